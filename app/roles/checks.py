"""The policy checks of the role page's changes (issue 10's analysis, `app.policy`) and their
risk gate.

A change is reviewed with the findings for the role as it will be AFTER the change: its trust
policy, or the union of what it will hold (attached, inline) limited by its boundary. Errors
block. Each security warning the change brings (absent before it) must be acknowledged by
name before the change is applied; those the role already has are shown but not asked again,
so detaching a policy or fixing a typo is never held up by a risk it does not add. The
findings and the acknowledgements are kept in the change's audit event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from app.operations.plan import Plan
from app.policy import Finding, PolicyKind
from app.policy import analyse as analyse_policy
from app.policy.role_review import Holdings, trust_findings
from app.services import Services

Kind = Literal["trust", "identity"]


@dataclass
class Checked:
    """One document as typed: its errors (they block) and its other findings."""

    document: dict[str, Any] | None
    errors: list[Finding] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.document is not None and not self.errors


def analyse(text: str, kind: Kind, account_id: str) -> Checked:
    policy_kind = PolicyKind.TRUST if kind == "trust" else PolicyKind.IDENTITY
    result = analyse_policy(text, policy_kind, account_id=account_id)
    if result.errors:
        return Checked(None, result.errors)
    return Checked(result.document, [], [f for f in result.findings if f.level != "error"])


@dataclass
class RiskReview:
    """The findings for the role after the change, and which of them need a yes."""

    findings: list[Finding]
    brought: set[str]  # keys of the security warnings this change adds

    @property
    def to_acknowledge(self) -> list[Finding]:
        return [f for f in self.findings if f.key in self.brought]

    @property
    def already_held(self) -> list[Finding]:
        return [f for f in self.findings if f.key not in self.brought]

    def missing(self, acknowledged: Iterable[str]) -> list[Finding]:
        ticked = set(acknowledged)
        return [f for f in self.to_acknowledge if f.key not in ticked]

    def record(self, acknowledged: Iterable[str]) -> dict[str, Any]:
        keys = {f.key for f in self.to_acknowledge}
        return {
            "findings": [
                {k: v for k, v in f.as_dict().items() if v not in (None, "")} for f in self.findings
            ],
            "acknowledged": sorted(k for k in set(acknowledged) if k in keys),
        }


def _review(before: list[Finding], after: list[Finding]) -> RiskReview:
    had = {f.key for f in before if f.level == "security_warning"}
    brought = {f.key for f in after if f.level == "security_warning" and f.key not in had}
    ordered = sorted(after, key=lambda f: (f.key not in brought, f.level != "security_warning"))
    return RiskReview(ordered, brought)


def trust_review(services: Services, current: Any, new: dict[str, Any]) -> RiskReview:
    account = services.identity.account
    return _review(trust_findings(current, account), trust_findings(new, account))


def permissions_review(
    services: Services,
    role_name: str,
    boundary_arn: str | None,
    *,
    new_boundary: str | Literal[False] | None = False,
    attach: Iterable[str] = (),
    detach: Iterable[str] = (),
    inline: Mapping[str, dict[str, Any] | None] | None = None,
) -> RiskReview:
    """Risk findings of the role's permissions before and after attaching, detaching, putting
    or deleting inline policies, or changing the boundary (`new_boundary`: an ARN, None to
    remove it, False to keep it)."""
    holdings = Holdings.read(services.iam, role_name)  # one read for before and after
    after_boundary = boundary_arn if new_boundary is False else new_boundary
    after = holdings.risks(after_boundary, attach=attach, detach=detach, inline=inline)
    return _review(holdings.risks(boundary_arn), after)


def gate_message(review: RiskReview, acknowledged: Iterable[str]) -> str:
    """Why the change is refused, or "" when every security warning it brings is ticked."""
    missing = review.missing(acknowledged)
    if not missing:
        return ""
    return (
        f"Acknowledge each security warning this change brings before applying it "
        f"({len(missing)} not acknowledged): tick the box beside it."
    )


def with_review(plan: Plan, review: RiskReview, acknowledged: Iterable[str]) -> Plan:
    """The plan with the review kept in its first step's audit event."""
    first, *rest = plan.steps
    noted = replace(first, note={"policy_review": review.record(acknowledged)})
    return replace(plan, steps=(noted, *rest))
