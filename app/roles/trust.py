"""Summarise a trust policy the way the IAM console's roles list does:
"AWS service: ec2", "Account: 111122223333", "Identity provider: ...", "SAML: ..."."""

from __future__ import annotations

from typing import Any

from app.aws.types import PolicyDocument


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _aws_principal(value: str) -> str:
    if value == "*":
        return "Anyone (*)"
    if value.isdigit():
        return f"Account: {value}"
    if value.startswith("arn:aws:iam::"):
        account, _, resource = value[len("arn:aws:iam::") :].partition(":")
        if resource == "root":
            return f"Account: {account}"
        return f"Account: {account} ({resource})"
    return f"AWS: {value}"


def _federated(value: str) -> str:
    if ":saml-provider/" in value:
        return f"SAML: {value.split(':saml-provider/', 1)[1]}"
    if ":oidc-provider/" in value:
        return f"Identity provider: {value.split(':oidc-provider/', 1)[1]}"
    return f"Identity provider: {value}"


def _service(value: str) -> str:
    return f"AWS service: {value.removesuffix('.amazonaws.com')}"


def summarise_trust(policy: PolicyDocument | str) -> tuple[str, ...]:
    """Distinct trusted entities of the Allow statements, in order of appearance."""
    if isinstance(policy, str):
        return ("Unreadable trust policy",)
    found: list[str] = []
    for statement in _as_list(policy.get("Statement")):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if principal == "*":
            found.append("Anyone (*)")
            continue
        if not isinstance(principal, dict):
            continue
        for value in _as_list(principal.get("Service")):
            found.append(_service(str(value)))
        for value in _as_list(principal.get("AWS")):
            found.append(_aws_principal(str(value)))
        for value in _as_list(principal.get("Federated")):
            found.append(_federated(str(value)))
    return tuple(dict.fromkeys(found))
