"""`analyse(text, kind)`: the one policy analysis RoleDesk runs wherever a policy enters."""

from __future__ import annotations

from app.policy import grammar, identity_checks, risk, trust_checks
from app.policy.context import Context
from app.policy.locate import Locator
from app.policy.model import Analysis, Finding, PolicyKind

TRUST_SIZE_QUOTA = 2048  # AssumeRolePolicySizeQuota default


def analyse(
    text: str,
    kind: PolicyKind,
    *,
    account_id: str | None = None,
    size_quota: int | None = None,
    risk_timeout: float = risk.LIVE_TIMEOUT,
) -> Analysis:
    """All findings for one policy document as typed.

    `account_id` (this account) lets the trust checks tell other accounts apart;
    `size_quota` is the account's quota for this kind of document (trust: 2048 unless
    raised; inline: what is left of the role's 10,240); `risk_timeout` is how long to wait
    for the deep privilege-escalation scan of an identity policy.
    """
    ctx = Context(text, kind, account_id)
    doc = grammar.parse(ctx)
    if doc is grammar.UNPARSED:
        return Analysis(ctx.findings)
    ctx.locator = Locator(text)
    statements = grammar.statements(ctx, doc)
    for st in statements:
        if kind is PolicyKind.TRUST:
            trust_checks.check(ctx, st)
        else:
            identity_checks.check(ctx, st)
    document = doc if isinstance(doc, dict) else None
    quota = (
        size_quota
        if size_quota is not None
        else (TRUST_SIZE_QUOTA if kind is PolicyKind.TRUST else None)
    )
    if quota is not None and document is not None:
        size = grammar.size_of(document)
        if size > quota:
            ctx.add(
                "error",
                "POLICY_SIZE",
                f"The policy is {size} characters without spaces; this account allows {quota}. "
                "Shorten it (or ask AWS to raise the quota).",
            )
    if kind is PolicyKind.IDENTITY and document is not None and not ctx.findings_block():
        ctx.findings.extend(
            _located(
                ctx,
                risk.role_risks([risk.HeldPolicy("", document, "inline")], timeout=risk_timeout),
            )
        )
    return Analysis(ctx.findings, document)


def _located(ctx: Context, findings: list[Finding]) -> list[Finding]:
    """Risk findings of one document, placed at their statement in the editor."""
    placed = []
    for f in findings:
        line = column = None
        if f.statement is not None and ctx.locator is not None:
            raw = ctx.locator.offsets
            path: tuple[str | int, ...] = (
                ("Statement", f.statement) if ("Statement", f.statement) in raw else ("Statement",)
            )
            line, column = ctx.locator.at(path)
        placed.append(Finding(f.level, f.code, f.message, f.statement, line, column))
    return placed
