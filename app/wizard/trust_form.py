"""Step 1's trusted-entity form as a whole: its fields, defaults, the values read from a
submitted form, and the context its templates need (wizard/_trust_fields.html and
wizard/_trust_preview.html).

Shared by the wizard's step 1 and the role page's "rebuild the trust policy" (issue 11), so
both offer the same five forms with the same checks and the same live preview; only the
addresses the form posts to differ.
"""

from __future__ import annotations

from typing import Any

from app.policy import PolicyKind
from app.policy.access_analyzer import merge
from app.wizard import catalog, picker, rules, trust
from app.wizard.service import Wizard
from app.wizard.web import FormValues

TRUST_FIELDS = (
    "entity_type",
    "service",
    "account_choice",
    "account_id",
    "require_external_id",
    "external_id",
    "require_mfa",
    "web_provider",
    "audience",
    "cognito_amr",
    "github_org",
    "github_repo",
    "github_branch",
    "saml_provider",
    "saml_access",
    "saml_attribute",
    "saml_value",
    "saml_region",
    "custom_policy",
    "service_name",
    "use_case",
)
# Step 1's error slots (fields that can be wrong): the live preview clears those whose field
# has become valid.
ERROR_FIELDS = tuple(
    n
    for n in TRUST_FIELDS
    if n not in ("service_name", "require_external_id", "require_mfa", "cognito_amr")
)
TRUST_DEFAULTS = {
    "entity_type": "service",
    "account_choice": "this",
    "cognito_amr": "authenticated",
    "saml_access": "console",
    "custom_policy": trust.CUSTOM_TEMPLATE,
    "web_provider": "cognito",
}


def trust_values(form: FormValues) -> dict[str, str]:
    """The submitted step-1 fields, with the service picker's choice applied."""
    return picker.apply({name: form.get(name) for name in TRUST_FIELDS})


def trust_errors(result: trust.TrustResult, values: dict[str, str]) -> dict[str, str]:
    return {**result.errors, **picker.errors(values)}


def build(wizard: Wizard, values: dict[str, str]) -> trust.TrustResult:
    """The trust policy of the form's values, with the account's size quota."""
    return trust.build_trust(
        values, wizard.providers(), size_quota=wizard.quotas().trust_policy_size
    )


def trust_form_context(
    wizard: Wizard,
    values: dict[str, str],
    *,
    show_errors: bool,
    picker_url: str,
    check_url: str,
    query: str = "",
    oob: bool = False,
) -> dict[str, Any]:
    """What the trusted-entity form and its preview show for `values`: the built policy (and
    its findings, IAM Access Analyzer's too on real AWS), the errors when `show_errors`."""
    providers = wizard.providers()
    result = trust.build_trust(values, providers, size_quota=wizard.quotas().trust_policy_size)
    if result.policy is not None:
        text = (
            values.get("custom_policy", "")
            if values.get("entity_type") == "custom"
            else result.json
        )
        result.findings = merge(result.findings, wizard.remote_findings(text, PolicyKind.TRUST))
    service = values.get("service", "").strip()
    return {
        "values": values,
        "result": result,
        "errors": trust_errors(result, values) if show_errors else {},
        "error_fields": ERROR_FIELDS,
        "oob": oob,
        "providers": providers,
        "entity_types": trust.ENTITY_TYPES,
        "web_providers": trust.WEB_PROVIDERS,
        "github_host": trust.GITHUB_HOST,
        "picker": picker.build(values, query),
        "picker_url": picker_url,
        "check_url": check_url,
        "use_cases": catalog.use_cases_for(service),
        "rules": rules,
        "signin_regions": trust.signin_regions(),
    }
