"""The spoke role in each member account: what it may do (the policy RoleDesk generates
from its declared calls, `roledesk permissions`) and whom it trusts (the hub's principal,
inside the organization). The sandbox creates it from these; docs/spoke-role.cfn.yaml and
docs/spoke-role.tf hold the same, and a test keeps them in step.
"""

from __future__ import annotations

import re
from typing import Any

# Importing app.permissions registers every gateway's declared calls, whichever of them
# the caller has imported so far.
from app.permissions import required_policy

SPOKE_POLICY_NAME = "RoleDeskAccess"

_ASSUMED = re.compile(r"^arn:(aws[\w-]*):sts::(\d{12}):assumed-role/([\w+=,.@-]+)/[^/]+$")


def hub_principal(identity_arn: str) -> str:
    """The principal a trust policy can name for RoleDesk's own identity: an assumed-role
    session becomes its role's ARN (a role on a path other than `/` must be given in full
    in configuration instead; STS does not return the path)."""
    found = _ASSUMED.match(identity_arn)
    if found:
        partition, account, role = found.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"
    return identity_arn


def spoke_policy() -> dict[str, Any]:
    """The spoke role's permissions: exactly what RoleDesk's declared calls need (the
    policy of docs/required-permissions.json)."""
    return required_policy()


def spoke_trust(hub_principal_arn: str, org_id: str | None) -> dict[str, Any]:
    """Trust the hub's principal only, and (inside an organization) only while it belongs
    to the organization."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": hub_principal_arn},
        "Action": "sts:AssumeRole",
    }
    if org_id:
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": org_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}
