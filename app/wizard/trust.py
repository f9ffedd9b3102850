"""Step 1: the trust policy for each trusted-entity type, built the way the console does.

Pure functions: raw form values in, a policy document (or field errors) out. The shapes are
those of aws-iam-behaviour.md A1 (scalar Principal and Action values, as the IAM user guide
shows them); the tests compare each with the console's documented JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.aws.regions import commercial_regions
from app.policy import Finding, PolicyKind, analyse, size_of
from app.wizard import catalog, rules

VERSION = "2012-10-17"
ENTITY_TYPES: tuple[tuple[str, str, str], ...] = (
    (
        "service",
        "AWS service",
        "Allow AWS services like EC2, Lambda, or others to perform actions in this account.",
    ),
    (
        "account",
        "AWS account",
        "Allow entities in other AWS accounts belonging to you or a 3rd "
        "party to perform actions in this account.",
    ),
    (
        "web_identity",
        "Web identity",
        "Allows users federated by the specified external web "
        "identity provider to assume this role.",
    ),
    (
        "saml",
        "SAML 2.0 federation",
        "Allow users federated with SAML 2.0 from a corporate "
        "directory to perform actions in this account.",
    ),
    (
        "custom",
        "Custom trust policy",
        "Create a custom trust policy to enable others to perform actions in this account.",
    ),
)
TYPE_NAMES = {key for key, _, _ in ENTITY_TYPES}

WEB_PROVIDERS: dict[str, tuple[str, str, str]] = {
    # key: (label, Federated principal, condition key of the audience / app id)
    "cognito": (
        "Amazon Cognito",
        "cognito-identity.amazonaws.com",
        "cognito-identity.amazonaws.com:aud",
    ),
    "amazon": ("Login with Amazon", "www.amazon.com", "www.amazon.com:app_id"),
    "facebook": ("Facebook", "graph.facebook.com", "graph.facebook.com:app_id"),
    "google": ("Google", "accounts.google.com", "accounts.google.com:aud"),
}
GITHUB_HOST = "token.actions.githubusercontent.com"
SAML_CONSOLE_AUDIENCE = "https://signin.aws.amazon.com/saml"
CUSTOM_TEMPLATE = json.dumps(
    {
        "Version": VERSION,
        "Statement": [
            {"Sid": "Statement1", "Effect": "Allow", "Principal": {}, "Action": "sts:AssumeRole"}
        ],
    },
    indent=4,
)


@dataclass
class TrustResult:
    """A trust policy, or the errors that prevent one, and the policy analysis findings
    (app.policy): only errors block; security warnings are acknowledged at review."""

    policy: dict[str, Any] | None
    errors: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def json(self) -> str:
        return json.dumps(self.policy, indent=4) if self.policy is not None else ""


def _statement(
    principal: dict[str, Any], action: str | list[str], condition: dict[str, Any]
) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": action}
    if condition:
        statement["Condition"] = condition
    return {"Version": VERSION, "Statement": [statement]}


# Builders: one per trusted-entity type ------------------------------------------------------


EKS_POD_IDENTITY = "pods.eks.amazonaws.com"


def service_trust(principal: str) -> Any:
    """EKS Pod Identity also needs sts:TagSession: it tags every session with the pod's
    cluster, namespace and service account (EKS user guide pod-id-role)."""
    if principal == EKS_POD_IDENTITY:
        return _statement({"Service": principal}, ["sts:AssumeRole", "sts:TagSession"], {})
    return _statement({"Service": principal}, "sts:AssumeRole", {})


def account_trust(account_id: str, external_id: str = "", require_mfa: bool = False) -> Any:
    condition: dict[str, Any] = {}
    if external_id:
        condition["StringEquals"] = {"sts:ExternalId": external_id}
    if require_mfa:
        condition["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    return _statement({"AWS": f"arn:aws:iam::{account_id}:root"}, "sts:AssumeRole", condition)


def web_identity_trust(provider: str, audience: str, cognito_amr: str = "") -> Any:
    """Cognito, Login with Amazon, Facebook or Google (`provider` is a WEB_PROVIDERS key)."""
    _, federated, audience_key = WEB_PROVIDERS[provider]
    condition: dict[str, Any] = {"StringEquals": {audience_key: audience}}
    if provider == "cognito" and cognito_amr:
        condition["ForAnyValue:StringLike"] = {"cognito-identity.amazonaws.com:amr": cognito_amr}
    return _statement({"Federated": federated}, "sts:AssumeRoleWithWebIdentity", condition)


def oidc_trust(provider_arn: str, audience: str) -> Any:
    host = provider_arn.split(":oidc-provider/", 1)[1]
    condition = {"StringEquals": {f"{host}:aud": audience}}
    return _statement({"Federated": provider_arn}, "sts:AssumeRoleWithWebIdentity", condition)


def github_trust(provider_arn: str, org: str, repo: str, branch: str = "") -> Any:
    """GitHub Actions: audience sts.amazonaws.com and a `sub` for the repository (and branch)."""
    aud = f"{GITHUB_HOST}:aud"
    sub = f"{GITHUB_HOST}:sub"
    if branch and "*" not in branch and repo != "*":
        condition: dict[str, Any] = {
            "StringEquals": {
                aud: "sts.amazonaws.com",
                sub: f"repo:{org}/{repo}:ref:refs/heads/{branch}",
            }
        }
    else:
        ref = f"ref:refs/heads/{branch}" if branch else "*"
        condition = {
            "StringEquals": {aud: "sts.amazonaws.com"},
            "StringLike": {sub: f"repo:{org}/{repo}:{ref}"},
        }
    return _statement({"Federated": provider_arn}, "sts:AssumeRoleWithWebIdentity", condition)


def saml_audience(region: str = "") -> str:
    """The console sign-in endpoint a SAML assertion is posted to: the global one, or a
    regional one (IAM user guide create-role-saml-IdP-tasks: https://REGION.signin...)."""
    return f"https://{region}.signin.aws.amazon.com/saml" if region else SAML_CONSOLE_AUDIENCE


def signin_regions() -> tuple[str, ...]:
    """Regions with a regional AWS sign-in endpoint (the commercial partition's regions)."""
    return commercial_regions()


def saml_trust(
    provider_arn: str,
    console_access: bool,
    attributes: list[tuple[str, str]] = (),  # type: ignore[assignment]
    region: str = "",
) -> Any:
    equals: dict[str, Any] = {}
    if console_access:
        equals["SAML:aud"] = saml_audience(region)
    for key, value in attributes:
        equals[key] = value
    condition = {"StringEquals": equals} if equals else {}
    return _statement({"Federated": provider_arn}, "sts:AssumeRoleWithSAML", condition)


# From form values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Providers:
    """The account's identity providers (read from IAM) and its id."""

    account_id: str
    oidc_arns: tuple[str, ...] = ()
    saml_arns: tuple[str, ...] = ()


def build_trust(
    values: Mapping[str, str], providers: Providers, *, size_quota: int = 2048
) -> TrustResult:
    """Validate the step-1 form and build its trust policy."""
    kind = values.get("entity_type", "")
    if kind not in TYPE_NAMES:
        return TrustResult(None, {"entity_type": "Choose a trusted entity type."})
    builder = {
        "service": _from_service,
        "account": _from_account,
        "web_identity": _from_web_identity,
        "saml": _from_saml,
        "custom": _from_custom,
    }[kind]
    result = builder(values, providers)
    if kind == "custom":
        analysis = analyse(
            values.get("custom_policy", ""),
            PolicyKind.TRUST,
            account_id=providers.account_id,
            size_quota=size_quota,
        )
        result.policy = analysis.document
        result.findings = analysis.findings + result.findings
        if analysis.errors:
            first = analysis.errors[0]
            where = f"{first.where}: " if first.where else ""
            result.errors["custom_policy"] = where + first.message
    elif result.policy is not None and not result.errors:
        analysis = analyse(
            json.dumps(result.policy, indent=4), PolicyKind.TRUST, account_id=providers.account_id
        )
        result.findings = analysis.findings + result.findings
        size = size_of(result.policy)
        if size > size_quota:
            result.errors["entity_type"] = (
                f"The trust policy is {size} characters; this account allows {size_quota} "
                "(AssumeRolePolicySizeQuota)."
            )
    if result.errors:
        result.policy = result.policy if kind == "custom" else None
    return result


def _v(values: Mapping[str, str], key: str) -> str:
    return values.get(key, "").strip()


def _from_service(values: Mapping[str, str], _: Providers) -> TrustResult:
    principal = _v(values, "service")
    error = rules.SERVICE_PRINCIPAL.check(principal)
    if error:
        return TrustResult(None, {"service": error})
    findings = []
    if not catalog.use_cases_for(principal):
        findings.append(
            Finding(
                "warning",
                "SERVICE_NOT_IN_CATALOGUE",
                f"{principal} is not in RoleDesk's service catalogue. Service principals are "
                "case-sensitive: check the exact name in the service's documentation.",
            )
        )
    return TrustResult(service_trust(principal), findings=findings)


def _from_account(values: Mapping[str, str], providers: Providers) -> TrustResult:
    errors: dict[str, str] = {}
    account = providers.account_id
    if _v(values, "account_choice") == "other":
        account = _v(values, "account_id")
        if error := rules.ACCOUNT_ID.check(account):
            errors["account_id"] = error
    elif _v(values, "account_choice") != "this":
        errors["account_choice"] = "Choose this account or another AWS account."
    external_id = ""
    if values.get("require_external_id"):
        external_id = _v(values, "external_id")
        if error := rules.EXTERNAL_ID.check(external_id):
            errors["external_id"] = error
    if errors:
        return TrustResult(None, errors)
    return TrustResult(account_trust(account, external_id, bool(values.get("require_mfa"))))


def _from_web_identity(values: Mapping[str, str], providers: Providers) -> TrustResult:
    provider = _v(values, "web_provider")
    audience = _v(values, "audience")
    if provider in WEB_PROVIDERS:
        rule = rules.COGNITO_POOL_ID if provider == "cognito" else rules.AUDIENCE
        if error := rule.check(audience):
            return TrustResult(None, {"audience": error})
        amr = _v(values, "cognito_amr") if provider == "cognito" else ""
        if amr not in ("", "authenticated", "unauthenticated"):
            return TrustResult(None, {"cognito_amr": "Choose authenticated or unauthenticated."})
        return TrustResult(web_identity_trust(provider, audience, amr))
    if provider not in providers.oidc_arns:
        return TrustResult(None, {"web_provider": "Choose an identity provider."})
    if provider.endswith(f":oidc-provider/{GITHUB_HOST}"):
        return _from_github(values, provider)
    if error := rules.AUDIENCE.check(audience):
        return TrustResult(None, {"audience": error})
    return TrustResult(oidc_trust(provider, audience))


def _from_github(values: Mapping[str, str], provider: str) -> TrustResult:
    org, repo, branch = (
        _v(values, "github_org"),
        _v(values, "github_repo"),
        _v(values, "github_branch"),
    )
    errors = {
        name: error
        for name, error in (
            ("github_org", rules.GITHUB_ORG.check(org)),
            ("github_repo", rules.GITHUB_REPO.check(repo)),
            ("github_branch", rules.GITHUB_BRANCH.check(branch, required=False)),
        )
        if error
    }
    if errors:
        return TrustResult(None, errors)
    return TrustResult(github_trust(provider, org, repo, branch))


def _from_saml(values: Mapping[str, str], providers: Providers) -> TrustResult:
    provider = _v(values, "saml_provider")
    errors: dict[str, str] = {}
    if provider not in providers.saml_arns:
        errors["saml_provider"] = "Choose a SAML provider."
    access = _v(values, "saml_access")
    if access not in ("programmatic", "console"):
        errors["saml_access"] = "Choose the access to allow."
    key, value = _v(values, "saml_attribute"), _v(values, "saml_value")
    attributes: list[tuple[str, str]] = []
    if key or value:
        if error := rules.SAML_ATTRIBUTE.check(key):
            errors["saml_attribute"] = error
        elif error := rules.SAML_VALUE.check(value):
            errors["saml_value"] = error
        else:
            attributes.append((key, value))
    elif access == "programmatic":
        errors["saml_attribute"] = (
            "Programmatic-only access needs at least one attribute condition."
        )
    if errors:
        return TrustResult(None, errors)
    region = _v(values, "saml_region")
    if region and region not in signin_regions():
        return TrustResult(None, {"saml_region": "Choose a sign-in endpoint from the list."})
    return TrustResult(saml_trust(provider, access == "console", attributes, region))


def _from_custom(values: Mapping[str, str], _: Providers) -> TrustResult:
    """Analysed in build_trust, with the account's size quota."""
    return TrustResult(None)
