"""Which of step 1's five trusted-entity forms a trust policy is, with the form's values.

The inverse of `app.wizard.trust`'s builders, for the role page's "rebuild the trust policy"
(issue 11): an existing role's document is recognised as an AWS service, an AWS account (with
its external ID and MFA conditions), a web identity (a provider's audience, Cognito's amr,
GitHub's repository and branch), or SAML 2.0 (console sign-in endpoint, one attribute
condition), and the form opens prefilled. A recognition is kept only when the form's values
build the very same document again; anything else (several statements, a Deny, other
conditions) opens the custom trust policy editor with the document as it is, so nothing in it
is lost by opening the form.
"""

from __future__ import annotations

import json
from typing import Any

from app.wizard import catalog
from app.wizard.trust import (
    GITHUB_HOST,
    SAML_CONSOLE_AUDIENCE,
    WEB_PROVIDERS,
    Providers,
    build_trust,
)

Values = dict[str, str]


def form_values(document: Any, providers: Providers) -> Values:
    """Step 1's values for `document` (a dict, or JSON text as IAM may return it)."""
    parsed = _parsed(document)
    values = _recognise(parsed, providers) if parsed is not None else None
    if values is not None and _rebuilds(values, parsed, providers):
        return values
    text = document if isinstance(document, str) else json.dumps(document, indent=4)
    return {"entity_type": "custom", "custom_policy": text}


def _parsed(document: Any) -> dict[str, Any] | None:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return None
    return document if isinstance(document, dict) else None


def _one(value: Any) -> Any:
    """A one-element list as its element (IAM accepts and may return either)."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def normalised(node: Any) -> Any:
    """For comparing documents: one-element lists as scalars, no statement Sid."""
    if isinstance(node, dict):
        return {k: normalised(_one(v)) for k, v in node.items() if k != "Sid"}
    if isinstance(node, list):
        return [normalised(v) for v in node]
    return node


def _rebuilds(values: Values, document: Any, providers: Providers) -> bool:
    # No size quota here: the document exists already; the review checks it like any edit.
    built = build_trust(values, providers, size_quota=1 << 20)
    return built.policy is not None and normalised(built.policy) == normalised(document)


def _statement(document: dict[str, Any]) -> dict[str, Any] | None:
    statements = _one(document.get("Statement"))
    if not isinstance(statements, dict) or statements.get("Effect") != "Allow":
        return None
    return statements


def _recognise(document: dict[str, Any], providers: Providers) -> Values | None:
    statement = _statement(document)
    if statement is None:
        return None
    principal = statement.get("Principal")
    if not isinstance(principal, dict) or len(principal) != 1:
        return None
    ((kind, who),) = principal.items()
    who = _one(who)
    if not isinstance(who, str):
        return None
    conditions = statement.get("Condition") or {}
    if not isinstance(conditions, dict):
        return None
    if kind == "Service":
        return _service(who)
    if kind == "AWS":
        return _account(who, conditions, providers)
    if kind == "Federated" and ":saml-provider/" in who:
        return _saml(who, conditions)
    if kind == "Federated":
        return _web_identity(who, conditions)
    return None


def _condition(conditions: dict[str, Any], operator: str, key: str) -> str:
    value = _one((conditions.get(operator) or {}).get(key, ""))
    if isinstance(value, bool):  # {"Bool": {"aws:MultiFactorAuthPresent": true}}
        return str(value).lower()
    return value if isinstance(value, str) else ""


def _service(principal: str) -> Values:
    values = {"entity_type": "service", "service": principal}
    cases = catalog.use_cases_for(principal)
    if cases:  # the picker shows the service and its use case chosen
        values.update(service_name=cases[0].service, use_case=cases[0].key)
    return values


def _account(principal: str, conditions: dict[str, Any], providers: Providers) -> Values:
    account = principal
    if principal.startswith("arn:aws:iam::") and principal.endswith(":root"):
        account = principal[len("arn:aws:iam::") : -len(":root")]
    values = {"entity_type": "account"}
    if account == providers.account_id:
        values["account_choice"] = "this"
    else:
        values.update(account_choice="other", account_id=account)
    if external_id := _condition(conditions, "StringEquals", "sts:ExternalId"):
        values.update(require_external_id="1", external_id=external_id)
    if _condition(conditions, "Bool", "aws:MultiFactorAuthPresent") == "true":
        values["require_mfa"] = "1"
    return values


def _web_identity(federated: str, conditions: dict[str, Any]) -> Values:
    values = {"entity_type": "web_identity"}
    for key, (_, principal, audience_key) in WEB_PROVIDERS.items():
        if federated == principal:
            values.update(
                web_provider=key, audience=_condition(conditions, "StringEquals", audience_key)
            )
            amr = "cognito-identity.amazonaws.com:amr"
            values["cognito_amr"] = _condition(conditions, "ForAnyValue:StringLike", amr)
            return values
    if ":oidc-provider/" not in federated:
        return values
    host = federated.split(":oidc-provider/", 1)[1]
    values["web_provider"] = federated
    if host != GITHUB_HOST:
        values["audience"] = _condition(conditions, "StringEquals", f"{host}:aud")
        return values
    sub = _condition(conditions, "StringEquals", f"{host}:sub") or _condition(
        conditions, "StringLike", f"{host}:sub"
    )
    # repo:ORG/REPO:ref:refs/heads/BRANCH, or repo:ORG/REPO:* (any ref)
    repo_part, _, ref = sub.removeprefix("repo:").partition(":")
    org, _, repo = repo_part.partition("/")
    branch = ref.removeprefix("ref:refs/heads/") if ref.startswith("ref:refs/heads/") else ""
    values.update(github_org=org, github_repo=repo, github_branch=branch)
    return values


def _saml(provider: str, conditions: dict[str, Any]) -> Values:
    values = {"entity_type": "saml", "saml_provider": provider, "saml_access": "programmatic"}
    equals = conditions.get("StringEquals") or {}
    if not isinstance(equals, dict):
        return values
    for key, raw in equals.items():
        value = _one(raw)
        if not isinstance(value, str):
            continue
        if key == "SAML:aud":
            values["saml_access"] = "console"
            if value != SAML_CONSOLE_AUDIENCE and value.endswith(".signin.aws.amazon.com/saml"):
                values["saml_region"] = value.removeprefix("https://").split(".", 1)[0]
        else:  # the form has one attribute condition; more fall back to the custom editor
            values.update(saml_attribute=key, saml_value=value)
    return values
