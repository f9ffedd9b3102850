"""RoleDesk: a self-hosted web dashboard for AWS IAM roles."""
