"""Validation of steps 2 and 3 and the plan built from a whole draft.

Drafts hold raw form values; `build_plan` validates all of them again (a draft edited in two
tabs, or saved before a rule changed, must not slip past), so the create run only ever sees a
checked `CreatePlan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.aws.types import ManagedPolicy, Tag
from app.policy import Finding, PolicyKind, analyse, size_of
from app.wizard import catalog, rules
from app.wizard.trust import Providers, build_trust


@dataclass(frozen=True)
class Quotas:
    """From GetAccountSummary (defaults are AWS's defaults)."""

    attached_policies: int = 10
    trust_policy_size: int = 2048
    inline_policy_size: int = 10_240

    @classmethod
    def from_summary(cls, values: dict[str, int]) -> Quotas:
        return cls(
            attached_policies=values.get("AttachedPoliciesPerRoleQuota", 10),
            trust_policy_size=values.get("AssumeRolePolicySizeQuota", 2048),
            inline_policy_size=values.get("RolePolicySizeQuota", 10_240),
        )


@dataclass
class PermissionsResult:
    policies: list[ManagedPolicy]
    boundary: ManagedPolicy | None
    inline_name: str
    inline_document: dict[str, Any] | None
    errors: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)  # the inline policy's analysis


def check_permissions(values: dict[str, Any], lookup: Any, quotas: Quotas) -> PermissionsResult:
    """`lookup(arn) -> ManagedPolicy | None` is the policy index."""
    errors: dict[str, str] = {}
    arns = [str(a) for a in values.get("policies", []) if isinstance(a, str)]
    policies = [p for p in (lookup(a) for a in arns) if p is not None]
    if len(policies) != len(arns):
        errors["policies"] = "A chosen policy no longer exists; remove it and choose again."
    if len(policies) > quotas.attached_policies:
        errors["policies"] = (
            f"{len(policies)} policies chosen; this account allows {quotas.attached_policies} "
            "per role (AttachedPoliciesPerRoleQuota). Remove some."
        )
    boundary_arn = str(values.get("boundary") or "")
    boundary = lookup(boundary_arn) if boundary_arn else None
    if boundary_arn and boundary is None:
        errors["boundary"] = "The permissions boundary policy no longer exists; choose another."
    inline_text = str(values.get("inline_policy") or "")
    inline_name = str(values.get("inline_name") or "").strip()
    document: dict[str, Any] | None = None
    findings: list[Finding] = []
    if inline_text.strip():
        if error := rules.INLINE_POLICY_NAME.check(inline_name):
            errors["inline_name"] = error
        analysis = analyse(inline_text, PolicyKind.IDENTITY)
        document, findings = analysis.document, analysis.findings
        if analysis.errors:
            first = analysis.errors[0]
            errors["inline_policy"] = (f"{first.where}: " if first.where else "") + first.message
        elif document is not None and size_of(document) > quotas.inline_policy_size:
            errors["inline_policy"] = (
                f"The inline policy is {size_of(document)} characters without spaces; "
                f"a role's inline policies may total {quotas.inline_policy_size}."
            )
    elif inline_name:
        errors["inline_policy"] = "Enter the inline policy JSON, or clear its name."
    return PermissionsResult(policies, boundary, inline_name, document, errors, findings)


@dataclass
class DetailsResult:
    name: str
    path: str
    description: str
    max_session_hours: int
    tags: list[tuple[str, str]]
    errors: dict[str, str] = field(default_factory=dict)
    tag_errors: dict[int, str] = field(default_factory=dict)


def tag_rows(values: dict[str, Any]) -> list[tuple[str, str]]:
    raw = values.get("tags", [])
    pairs = [t for t in (raw if isinstance(raw, list) else []) if isinstance(t, list | tuple)]
    rows = [(str(t[0]).strip(), str(t[1]).strip()) for t in pairs if len(t) == 2]
    return [(k, v) for k, v in rows if k or v]


def check_details(values: dict[str, Any]) -> DetailsResult:
    name = str(values.get("name", "")).strip()
    path = str(values.get("path", "") or "/").strip()
    description = str(values.get("description", ""))
    tags = tag_rows(values)
    errors = {
        key: error
        for key, error in (
            ("name", rules.ROLE_NAME.check(name)),
            ("path", rules.PATH.check(path)),
            ("description", rules.DESCRIPTION.check(description, required=False)),
        )
        if error
    }
    hours, error = rules.check_max_session_hours(str(values.get("max_session_hours", "1")))
    if error:
        errors["max_session_hours"] = error
    if len(tags) > rules.MAX_TAGS:
        errors["tags"] = f"A role may have at most {rules.MAX_TAGS} tags ({len(tags)} now)."
    tag_errors = rules.check_tags(tags)
    if tag_errors:
        errors.setdefault("tags", "Correct the tags marked below.")
    return DetailsResult(name, path, description, hours or 1, tags, errors, tag_errors)


@dataclass(frozen=True)
class CreatePlan:
    """A validated role, ready to create."""

    name: str
    path: str
    description: str
    max_session_duration: int
    tags: tuple[Tag, ...]
    trust_policy: dict[str, Any]
    policy_arns: tuple[str, ...]
    boundary_arn: str | None
    inline_name: str | None
    inline_document: dict[str, Any] | None
    instance_profile: bool

    def role_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role{self.path}{self.name}"

    def profile_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:instance-profile{self.path}{self.name}"


@dataclass
class DraftCheck:
    """Every step of a draft checked; `plan` is set only when all are valid."""

    trust: Any
    permissions: PermissionsResult
    details: DetailsResult
    plan: CreatePlan | None

    @property
    def first_invalid_step(self) -> str | None:
        if self.trust.errors or self.trust.policy is None:
            return "trust"
        if self.permissions.errors:
            return "permissions"
        return "review" if self.details.errors else None


def is_ec2_service(trust_values: dict[str, Any]) -> bool:
    return (
        trust_values.get("entity_type") == "service"
        and str(trust_values.get("service", "")).strip() == catalog.EC2_PRINCIPAL
    )


def check_draft(
    data: dict[str, Any], providers: Providers, lookup: Any, quotas: Quotas
) -> DraftCheck:
    trust_values = data.get("trust") or {}
    trust = build_trust(trust_values, providers, size_quota=quotas.trust_policy_size)
    permissions = check_permissions(data.get("permissions") or {}, lookup, quotas)
    details = check_details(data.get("details") or {})
    plan = None
    if trust.policy is not None and not (trust.errors or permissions.errors or details.errors):
        plan = CreatePlan(
            name=details.name,
            path=details.path,
            description=details.description,
            max_session_duration=details.max_session_hours * 3600,
            tags=tuple(Tag(k, v) for k, v in details.tags),
            trust_policy=trust.policy,
            policy_arns=tuple(p.arn for p in permissions.policies),
            boundary_arn=permissions.boundary.arn if permissions.boundary else None,
            inline_name=permissions.inline_name if permissions.inline_document else None,
            inline_document=permissions.inline_document,
            instance_profile=is_ec2_service(trust_values),
        )
    return DraftCheck(trust, permissions, details, plan)
