"""RoleSessionName for the spoke role: it carries the RoleDesk user, so CloudTrail in the
member account shows who acted ("assumed-role/RoleDeskAccess/roledesk-alice").

AWS allows 2-64 characters from `[\\w+=,.@-]`
(https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
"""

from __future__ import annotations

import re

PREFIX = "roledesk-"
MAX_LENGTH = 64
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_+=,.@-]")


def session_name(user: str) -> str:
    """`roledesk-<user>` with every character AWS refuses replaced by `-`, cut to 64."""
    cleaned = _NOT_ALLOWED.sub("-", user.strip()) or "unknown"
    return (PREFIX + cleaned)[:MAX_LENGTH]
