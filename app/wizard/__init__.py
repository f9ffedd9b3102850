"""The create-role wizard (issue 3): trusted entity, permissions, name and review, create."""
