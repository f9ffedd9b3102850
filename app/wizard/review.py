"""Step 3 helpers: the policy review (findings for everything the role will hold, from the
one policy analysis in app.policy) with its acknowledgement gate, and the equivalent AWS CLI.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.aws.types import ManagedPolicy
from app.policy import Analysis, Finding, HeldPolicy, PolicyKind, role_risks
from app.policy.access_analyzer import merge
from app.policy.risk import GATE_TIMEOUT, is_risk_code
from app.wizard.steps import CreatePlan, DraftCheck

DocumentFor = Callable[[ManagedPolicy], dict[str, Any] | None]
RemoteFindings = Callable[[str, PolicyKind], list[Finding]]


def trust_text(check: DraftCheck, trust_values: dict[str, Any]) -> str:
    """The trust policy as AWS will see it: the custom text as typed, or the built JSON."""
    if trust_values.get("entity_type") == "custom":
        return str(trust_values.get("custom_policy") or "")
    return str(check.trust.json)


def _no_remote(text: str, kind: PolicyKind) -> list[Finding]:
    return []


@dataclass
class PolicyReview(Analysis):
    """Every finding for the role as it will be created, security warnings first (they are
    what the person must answer at review)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.findings.sort(key=lambda f: f.level != "security_warning")

    def unacknowledged(self, acknowledged: set[str]) -> list[Finding]:
        return [f for f in self.security_warnings if f.key not in acknowledged]

    def record(self, acknowledged: set[str]) -> dict[str, Any]:
        """What the audit event of the create keeps: the findings and the acknowledgements."""
        return {
            "findings": [
                {k: v for k, v in f.as_dict().items() if v not in (None, "")} for f in self.findings
            ],
            "acknowledged": sorted(k for k in acknowledged if k in {f.key for f in self.findings}),
        }


def policy_review(
    check: DraftCheck,
    document_for: DocumentFor,
    *,
    data: dict[str, Any] | None = None,
    remote: RemoteFindings = _no_remote,
    timeout: float = GATE_TIMEOUT,
) -> PolicyReview:
    """Findings of the trust policy, the inline policy, and the union of what the role holds
    (attached managed policies and the inline one, limited by the boundary); with `remote`
    (real AWS), IAM Access Analyzer's findings for the trust and inline policies merged in."""
    data = data or {}
    trust = check.trust.findings
    if check.trust.policy is not None:
        trust = merge(trust, remote(trust_text(check, data.get("trust") or {}), PolicyKind.TRUST))
    found = [f.about("Trust policy") for f in trust]
    permissions = check.permissions
    inline_name = permissions.inline_name or "inline policy"
    inline = [f for f in permissions.findings if not is_risk_code(f.code)]
    inline_text = str((data.get("permissions") or {}).get("inline_policy") or "")
    if permissions.inline_document is not None:
        inline = merge(inline, remote(inline_text, PolicyKind.IDENTITY))
    found += [f.about(inline_name) for f in inline]
    held = [
        HeldPolicy(p.name, doc, "managed")
        for p in permissions.policies
        if (doc := document_for(p)) is not None
    ]
    if permissions.inline_document is not None:
        held.append(HeldPolicy(inline_name, permissions.inline_document, "inline"))
    boundary = None
    if permissions.boundary is not None and (doc := document_for(permissions.boundary)):
        boundary = HeldPolicy(permissions.boundary.name, doc, "boundary")
    found += role_risks(held, boundary, timeout=timeout)
    return PolicyReview(found)


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
