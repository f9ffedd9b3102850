"""Trust-policy checks: what CreateRole / UpdateAssumeRolePolicy refuse, and what IAM Access
Analyzer reports for AWS::IAM::AssumeRolePolicyDocument (issue 10's list).

Errors: NotPrincipal, a bare "*" principal, Resource, non-STS actions, malformed principals,
an assume action that the principal type cannot use. Security warnings: {"AWS": "*"} or an
OIDC/GitHub trust without the condition that limits who may assume. Warnings: another account
without external ID or MFA.
"""

from __future__ import annotations

import re
from typing import Any

from app.policy.context import Context, Statement, as_list

ASSUME = "sts:assumerole"
SAML = "sts:assumerolewithsaml"
WEB = "sts:assumerolewithwebidentity"
TRUST_ACTIONS = frozenset(
    {ASSUME, SAML, WEB, "sts:tagsession", "sts:setsourceidentity", "sts:setcontext"}
)
PRINCIPAL_KEYS = frozenset({"AWS", "Federated", "Service", "CanonicalUser"})
# The web identity providers IAM knows by name (console "Web identity"), with the condition
# key that carries their audience / application id.
WEB_IDPS = {
    "cognito-identity.amazonaws.com": "cognito-identity.amazonaws.com:aud",
    "www.amazon.com": "www.amazon.com:app_id",
    "graph.facebook.com": "graph.facebook.com:app_id",
    "accounts.google.com": "accounts.google.com:aud",
}
GITHUB_HOST = "token.actions.githubusercontent.com"
_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?"
_ACCOUNT = re.compile(r"\d{12}")
_AWS_ARN = re.compile(
    rf"arn:{_PARTITION}:(?:iam::\d{{12}}:(?:root|(?:role|user)/[\w+=,.@/-]+|"
    r"federated-user/[\w+=,.@-]+)|sts::\d{12}:(?:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+|"
    r"federated-user/[\w+=,.@-]+))"
)
_UNIQUE_ID = re.compile(r"A(?:ROA|IDA|IPA|GPA)[A-Z0-9]{12,128}")  # a deleted principal
_SERVICE = re.compile(r"[a-z0-9][a-z0-9.-]*\.amazonaws\.com(?:\.cn)?|[a-z0-9-]+\.amazon\.com")
_OIDC = re.compile(rf"arn:{_PARTITION}:iam::\d{{12}}:oidc-provider/([^\s*]+)")
_SAML = re.compile(rf"arn:{_PARTITION}:iam::\d{{12}}:saml-provider/[\w.-]+")


def principal_kind(key: str, value: str) -> str:
    """aws | service | saml | oidc | web | cognito | invalid, for one principal value."""
    if key == "AWS":
        ok = value == "*" or _ACCOUNT.fullmatch(value) or _AWS_ARN.fullmatch(value)
        return "aws" if ok or _UNIQUE_ID.fullmatch(value) else "invalid"
    if key == "Service":
        return "service" if _SERVICE.fullmatch(value) else "invalid"
    if key == "Federated":
        if _SAML.fullmatch(value):
            return "saml"
        if _OIDC.fullmatch(value):
            return "oidc"
        if value == "cognito-identity.amazonaws.com":
            return "cognito"
        return "web" if value in WEB_IDPS else "invalid"
    return "invalid"


ALLOWED_BY = {ASSUME: {"aws", "service"}, SAML: {"saml"}, WEB: {"oidc", "web", "cognito"}}
HOW = {
    ASSUME: "an AWS account, user, role or service principal",
    SAML: 'a SAML provider ("Federated": "arn:aws:iam::ACCOUNT:saml-provider/NAME")',
    WEB: "an OIDC provider or a web identity provider (Cognito, Google, Facebook, Amazon)",
}


def check(ctx: Context, st: Statement) -> None:
    body = st.body
    for key in ("Resource", "NotResource"):
        if key in body:
            ctx.at(
                st,
                "error",
                "TRUST_RESOURCE",
                f"Has prohibited field {key}: a trust policy names no resources. Remove it.",
                key,
            )
    if "NotPrincipal" in body:
        ctx.at(
            st,
            "error",
            "TRUST_NOT_PRINCIPAL",
            "NotPrincipal cannot be used in a trust policy: name the principals that may assume "
            "the role in Principal.",
            "NotPrincipal",
        )
        return
    if "Principal" not in body:
        ctx.at(
            st,
            "error",
            "MISSING_PRINCIPAL",
            "A trust policy statement needs a Principal: who may assume this role.",
        )
        return
    actions = [a.lower() for a in st.values("Action") if isinstance(a, str)]
    _actions(ctx, st)
    kinds = _principals(ctx, st)
    if kinds is None:
        return
    for action in actions:
        allowed = ALLOWED_BY.get(action)
        if allowed and kinds and not kinds & allowed:
            ctx.at(
                st,
                "error",
                "TRUST_ACTION_PRINCIPAL_MISMATCH",
                f"{_display(st, action)} cannot be used by this principal: it needs {HOW[action]}.",
                "Action",
            )
        if action == ASSUME and "cognito" in kinds and not kinds & {"aws", "service"}:
            ctx.at(
                st,
                "error",
                "TRUST_ACTION_PRINCIPAL_MISMATCH",
                "Amazon Cognito identities assume roles with sts:AssumeRoleWithWebIdentity, not "
                "sts:AssumeRole.",
                "Action",
            )
    if body.get("Effect") == "Allow":
        _conditions(ctx, st, kinds, actions)


def _display(st: Statement, lowered: str) -> str:
    for a in st.values("Action"):
        if isinstance(a, str) and a.lower() == lowered:
            return a
    return lowered


def _actions(ctx: Context, st: Statement) -> None:
    key = "Action" if "Action" in st.body else "NotAction"
    if key == "NotAction":
        ctx.at(
            st,
            "error",
            "TRUST_NOT_ACTION",
            "A trust policy lists the STS actions it allows in Action, not NotAction.",
            "NotAction",
        )
        return
    for index, action in enumerate(st.values(key)):
        if not isinstance(action, str) or ":" not in action:
            continue
        lowered = action.lower()
        if lowered in TRUST_ACTIONS:
            continue
        if lowered.startswith("sts:") and ("*" in lowered or "?" in lowered):
            ctx.add(
                "suggestion",
                "TRUST_ACTION_WILDCARD",
                f"Name the STS actions instead of {action} (for example sts:AssumeRole).",
                st.item_path(key, index),
                st.index,
            )
            continue
        ctx.add(
            "error",
            "TRUST_ACTION",
            "A trust policy may only allow STS actions (sts:AssumeRole, sts:AssumeRoleWithSAML, "
            "sts:AssumeRoleWithWebIdentity, sts:TagSession, sts:SetSourceIdentity, "
            f"sts:SetContext); {action} is not one.",
            st.item_path(key, index),
            st.index,
        )


def _principals(ctx: Context, st: Statement) -> set[str] | None:
    principal = st.body["Principal"]
    if principal == "*":
        ctx.at(
            st,
            "error",
            "TRUST_PRINCIPAL_STAR",
            'A bare "*" principal is refused in a trust policy: name the principals, or use '
            '{"AWS": "*"} with a condition that limits who may assume the role.',
            "Principal",
        )
        return None
    if not isinstance(principal, dict) or not principal:
        ctx.at(
            st,
            "error",
            "INVALID_PRINCIPAL",
            'Principal must be an object such as {"Service": "ec2.amazonaws.com"}.',
            "Principal",
        )
        return None
    kinds: set[str] = set()
    for key, value in principal.items():
        where = ("Principal", key)
        if key not in PRINCIPAL_KEYS:
            ctx.at(
                st,
                "error",
                "INVALID_PRINCIPAL_KEY",
                f"Unknown principal type {key}: use AWS, Service or Federated.",
                *where,
            )
            continue
        if key == "CanonicalUser":
            ctx.at(
                st,
                "error",
                "INVALID_PRINCIPAL_KEY",
                "CanonicalUser (an Amazon S3 canonical id) cannot assume a role: use an AWS "
                "account or role ARN.",
                *where,
            )
            continue
        values = as_list(value)
        if not values or not all(isinstance(v, str) and v for v in values):
            ctx.at(
                st,
                "error",
                "INVALID_PRINCIPAL",
                f"{key} must be a string or a list of strings.",
                *where,
            )
            continue
        for index, item in enumerate(values):
            kind = principal_kind(key, item)
            path = (*where, index) if isinstance(value, list) else where
            if kind == "invalid":
                ctx.add(
                    "error",
                    "INVALID_PRINCIPAL_FORMAT",
                    _principal_help(key, item),
                    (*st.path, *path),
                    st.index,
                )
            else:
                kinds.add(kind)
    return kinds


def _principal_help(key: str, value: str) -> str:
    if key == "AWS":
        return (
            f"{value} is not a valid AWS principal: use a 12-digit account id, "
            "arn:aws:iam::ACCOUNT:root, or a role or user ARN."
        )
    if key == "Service":
        return (
            f"{value} is not a service principal: they look like ec2.amazonaws.com "
            "(lower case; check the service's documentation)."
        )
    return (
        f"{value} is not a federated principal: use an OIDC or SAML provider ARN of this "
        "account, or cognito-identity.amazonaws.com, accounts.google.com, graph.facebook.com "
        "or www.amazon.com."
    )


def _keys(st: Statement) -> dict[str, list[Any]]:
    """Condition key (lower case) -> the values it is compared with, under any operator."""
    found: dict[str, list[Any]] = {}
    block = st.body.get("Condition")
    if isinstance(block, dict):
        for keys in block.values():
            if isinstance(keys, dict):
                for key, values in keys.items():
                    found.setdefault(key.lower(), []).extend(as_list(values))
    return found


def _conditions(ctx: Context, st: Statement, kinds: set[str], actions: list[str]) -> None:
    keys = _keys(st)
    principal = st.body["Principal"]
    aws = [v for v in as_list(principal.get("AWS", [])) if isinstance(v, str)]
    if "*" in aws and not keys:
        ctx.at(
            st,
            "security_warning",
            "TRUST_ANY_PRINCIPAL",
            'Anyone with an AWS account can assume this role ({"AWS": "*"} with no condition). '
            "Add a condition such as aws:PrincipalOrgID or aws:PrincipalArn, or name the accounts.",
            "Principal",
        )
    for federated in as_list(principal.get("Federated", [])):
        if not isinstance(federated, str):
            continue
        host = _oidc_host(federated)
        if host is None:
            continue
        audience_keys = {f"{host}:aud", f"{host}:app_id", f"{host}:oaud"}
        if not audience_keys & keys.keys():
            ctx.at(
                st,
                "security_warning",
                "TRUST_OIDC_NO_AUDIENCE",
                f"Any application of {host} can assume this role: add a condition on {host}:aud "
                "(the audience or client id).",
                "Principal",
            )
        if host.split("/", 1)[0] == GITHUB_HOST and not _github_sub_limited(
            keys.get(f"{host}:sub", [])
        ):
            ctx.at(
                st,
                "security_warning",
                "TRUST_GITHUB_NO_SUB",
                "Every GitHub repository can assume this role: add a condition on "
                "token.actions.githubusercontent.com:sub, such as "
                "repo:ORG/REPO:ref:refs/heads/main.",
                "Principal",
            )
    if ctx.account_id and ASSUME in actions:
        others = sorted({a for a in (_account_of(v) for v in aws) if a and a != ctx.account_id})
        limiting = {
            "sts:externalid",
            "aws:multifactorauthpresent",
            "aws:multifactorauthage",
            "aws:principalorgid",
        }
        if others and not limiting & keys.keys():
            ctx.at(
                st,
                "warning",
                "TRUST_CROSS_ACCOUNT_NO_CONDITION",
                f"Another AWS account ({', '.join(others)}) can assume this role without an "
                "external ID or MFA. For a third party, require an external ID; for your own "
                "people, require MFA.",
                "Principal",
            )


def _oidc_host(federated: str) -> str | None:
    match = _OIDC.fullmatch(federated)
    if match:
        return match.group(1).lower()
    return federated if federated in WEB_IDPS else None


def _github_sub_limited(values: list[Any]) -> bool:
    """A `sub` condition that names at least an organisation (repo:ORG/...), not `*`."""
    if not values:
        return False
    return all(isinstance(v, str) and not re.fullmatch(r"\*|repo:\*.*", v) for v in values)


def _account_of(principal: str) -> str | None:
    if _ACCOUNT.fullmatch(principal):
        return principal
    parts = principal.split(":")
    return parts[4] if len(parts) > 5 and _ACCOUNT.fullmatch(parts[4]) else None
