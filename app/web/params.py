"""Checks for values that arrive in paths, query strings and forms, before they are used.

Python's `str.isdigit()` and `int()` accept Unicode digits ("²", "①", Arabic-Indic digits),
and regular expressions' `\\w` matches letters from every script, while AWS accepts only ASCII
in role names and policy ARNs. A value that breaks AWS's own pattern cannot name anything in
AWS, so it is refused here instead of being sent (a NUL or U+FFFF makes AWS's answer
unreadable). Patterns: aws-iam-behaviour.md A2 (IAM API reference).
"""

from __future__ import annotations

import re

# IAM RoleName: [\w+=,.@-]+, 1-64, where AWS's \w is ASCII letters, digits and underscore.
ROLE_NAME_PATTERN = r"^[A-Za-z0-9_+=,.@-]{1,64}$"
ROLE_NAME_RULE = "1 to 64 letters, digits and + = , . @ _ -"
# A managed policy ARN: partition, "aws" or a 12-digit account, an optional path of printable
# ASCII between slashes, and a policy name ([\w+=,.@-]+, 1-128).
POLICY_ARN_PATTERN = (
    r"^arn:aws(-[a-z]+)*:iam::(aws|[0-9]{12}):policy/([!-~]*/)?[A-Za-z0-9_+=,.@-]{1,128}$"
)
POLICY_ARN_MAX = 2048
_ROLE_NAME = re.compile(ROLE_NAME_PATTERN)
_POLICY_ARN = re.compile(POLICY_ARN_PATTERN)
_DIGITS = re.compile(r"^[0-9]{1,18}$")


def ascii_int(text: str | None) -> int | None:
    """A whole number written with ASCII digits only (at most 18 of them), else None."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if _DIGITS.fullmatch(text) else None


def is_role_name(text: str) -> bool:
    return bool(_ROLE_NAME.fullmatch(text))


def is_policy_arn(text: str) -> bool:
    return len(text) <= POLICY_ARN_MAX and bool(_POLICY_ARN.fullmatch(text))


JSON_MAX_DEPTH = 32  # IAM policies nest about 6 deep; Python's parser recurses per level


def json_depth(text: str, limit: int = JSON_MAX_DEPTH) -> int:
    """How deep `text`'s arrays and objects nest (outside strings), counting without
    recursion and stopping once past `limit`, so a 1,000-level document (2 KB) is measured
    before `json.loads` and every recursive walk after it would run out of stack."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif char in "]}":
            depth -= 1
    return deepest
