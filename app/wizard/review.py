"""Step 3 helpers: least-privilege warnings in plain words, and the equivalent AWS CLI.

The warnings are RoleDesk's own small rule set (no policy library needed offline): a wildcard
principal, another account or a federation trusted without conditions, broad AWS managed
policies, and inline statements that allow everything or iam:PassRole on every resource.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from app.wizard.steps import CreatePlan

BROAD_POLICIES = {
    "AdministratorAccess": "AdministratorAccess gives full access to every AWS service and "
    "resource in the account.",
    "IAMFullAccess": "IAMFullAccess lets the role create users, roles and policies: it can "
    "give itself any permission.",
    "PowerUserAccess": "PowerUserAccess gives full access to every service except IAM "
    "user and group management.",
}


def _list(value: Any) -> list[Any]:
    """A policy element that may be one value or a list; absent (None) is no values (a service
    principal has no "AWS" key: it must not read as an account named None)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statements(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not document:
        return []
    return [s for s in _list(document.get("Statement")) if isinstance(s, dict)]


def trust_warnings(trust: dict[str, Any] | None, account_id: str) -> list[str]:
    found: list[str] = []
    for st in _statements(trust):
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        has_condition = bool(st.get("Condition"))
        if principal == "*" or (isinstance(principal, dict) and "*" in _list(principal.get("AWS"))):
            found.append(
                "Anyone (the wildcard principal *) can assume this role"
                + ("" if has_condition else ", from any AWS account, with no condition")
                + "."
            )
            continue
        if not isinstance(principal, dict):
            continue
        for value in _list(principal.get("AWS")):
            account = str(value).removeprefix("arn:aws:iam::").split(":", 1)[0]
            if account != account_id and not has_condition:
                found.append(
                    f"Another AWS account ({account}) can assume this role without any "
                    "condition. Require an external ID (for third parties) or MFA."
                )
        if principal.get("Federated") and not has_condition:
            found.append(
                "Every user of the identity provider can assume this role: the trust policy "
                "has no condition (audience, subject or attribute)."
            )
    return found


def permission_warnings(plan_policies: list[str], inline: dict[str, Any] | None) -> list[str]:
    found = [BROAD_POLICIES[n] for n in plan_policies if n in BROAD_POLICIES]
    for st in _statements(inline):
        if st.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in _list(st.get("Action", []))]
        resources = [str(r) for r in _list(st.get("Resource", []))]
        if "NotAction" in st:
            found.append(
                "The inline policy allows everything except the listed actions "
                "(NotAction with Allow)."
            )
        if "*" in actions or "*:*" in actions:
            found.append('The inline policy allows every action ("Action": "*").')
        elif any(a.lower() in ("iam:*", "iam:passrole") for a in actions) and "*" in resources:
            found.append(
                "The inline policy allows iam:PassRole on every resource: the role can hand "
                "any role, including more powerful ones, to a service."
            )
        elif any(a.endswith(":*") for a in actions) and "*" in resources:
            found.append("The inline policy allows every action of a service on every resource.")
    return found


def _q(value: str) -> str:
    return shlex.quote(value)


def cli_commands(plan: CreatePlan) -> list[str]:
    """The AWS CLI commands that create the same role."""
    name = _q(plan.name)
    create = [
        "aws iam create-role",
        f"--role-name {name}",
        f"--path {_q(plan.path)}",
        f"--assume-role-policy-document {_q(json.dumps(plan.trust_policy))}",
        f"--max-session-duration {plan.max_session_duration}",
    ]
    if plan.description:
        create.append(f"--description {_q(plan.description)}")
    if plan.boundary_arn:
        create.append(f"--permissions-boundary {_q(plan.boundary_arn)}")
    if plan.tags:
        tags = [{"Key": t.key, "Value": t.value} for t in plan.tags]
        create.append(f"--tags {_q(json.dumps(tags))}")
    commands = [" ".join(create)]
    commands += [
        f"aws iam attach-role-policy --role-name {name} --policy-arn {_q(arn)}"
        for arn in plan.policy_arns
    ]
    if plan.inline_name and plan.inline_document is not None:
        commands.append(
            f"aws iam put-role-policy --role-name {name} --policy-name {_q(plan.inline_name)} "
            f"--policy-document {_q(json.dumps(plan.inline_document))}"
        )
    if plan.instance_profile:
        commands += [
            f"aws iam create-instance-profile --instance-profile-name {name} "
            f"--path {_q(plan.path)}",
            f"aws iam add-role-to-instance-profile --instance-profile-name {name} "
            f"--role-name {name}",
        ]
    return commands
