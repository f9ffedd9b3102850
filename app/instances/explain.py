"""AWS errors of instance role changes, in plain words.

Works from the code and message alone (not an exception object) because the status page
rebuilds outcomes from the audit ledger, which stores exactly those.
"""

from __future__ import annotations

THROTTLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
WRONG_STATE_CODES = frozenset({"IncorrectInstanceState", "IncorrectState", "InvalidState"})

# Calls that hand a role to a service, so AWS also checks iam:PassRole on the role.
PASSES_ROLE = frozenset(
    {
        "ec2:AssociateIamInstanceProfile",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "iam:AddRoleToInstanceProfile",
    }
)

ACTION_NAMES = {
    "ec2:AssociateIamInstanceProfile": "attach",
    "ec2:ReplaceIamInstanceProfileAssociation": "replace",
    "ec2:DisassociateIamInstanceProfile": "detach",
    "iam:CreateInstanceProfile": "create the instance profile",
    "iam:AddRoleToInstanceProfile": "add the role to its new instance profile",
}


def _denied(message: str, action: str, role: str) -> str:
    if "iam:PassRole" in message:
        return (
            f"Not allowed: the credentials RoleDesk uses lack the iam:PassRole permission "
            f"on {role}. Grant iam:PassRole on that role's ARN to RoleDesk's identity, "
            "then try again."
        )
    if action not in PASSES_ROLE:
        return f"Not allowed: the credentials RoleDesk uses lack {action}."
    return (
        f"Not allowed: the credentials RoleDesk uses lack {action} or iam:PassRole on "
        f"{role}. Both are needed to give an instance a role."
    )


def _wrong_state(message: str, what: str) -> str:
    if "existing association" in message.lower():
        return "The instance already has a role attached (changed outside RoleDesk?)."
    return (
        f"The instance is in the wrong state to {what} a role: it must be running "
        "(to replace) or running or stopped (to attach or detach)."
    )


def _not_found(code: str, role: str, instance_id: str | None) -> str | None:
    if code == "NoSuchEntity":
        return f"The instance profile of {role} does not exist (deleted meanwhile?)."
    if code.startswith("InvalidInstanceID"):
        return f"There is no instance {instance_id or ''} in this region any more.".replace(
            "  ", " "
        )
    if code.startswith("InvalidAssociationID"):
        return (
            "The instance's role association changed outside RoleDesk meanwhile; reload the "
            "instances page and try again."
        )
    return None


def explain(
    code: str | None,
    message: str | None,
    *,
    action: str,
    role_name: str | None = None,
    instance_id: str | None = None,
) -> str:
    """One or two sentences for people; the code and request id are shown beside them."""
    code, message = code or "", message or ""
    what = ACTION_NAMES.get(action, action)
    role = f"role {role_name}" if role_name else "the role"
    if code in DENIED_CODES:
        return _denied(message, action, role)
    if code in THROTTLE_CODES:
        return (
            "AWS is throttling requests (too many calls in a short time) and RoleDesk gave up "
            f"after its retries, so it did not {what}. Wait a minute and try again."
        )
    if code in WRONG_STATE_CODES:
        return _wrong_state(message, what)
    lowered = message.lower()
    if "invalid iam instance profile" in lowered or "has no associated iam roles" in lowered:
        return (
            "EC2 does not accept the instance profile (yet): IAM takes a few seconds to make "
            "a new profile usable, so RoleDesk retries for up to two minutes; if it still "
            "fails, the profile holds no role."
        )
    if code == "LimitExceeded":
        return "An instance profile can hold only one role."
    return _not_found(code, role, instance_id) or message or code or "AWS refused the change."
