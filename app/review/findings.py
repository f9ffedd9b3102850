"""What the access review reports for one role, and why.

Two sources. The policy checks (app.policy: the trust checks, and the risk scan over the union
of what the role holds, limited by its boundary) run once per role when the account is
scanned. The rest depends on the whole account, the clock or the review records, so it is
worked out when the page is shown, from facts the scan kept: last use and creation date,
which inline documents other roles or customer managed policies repeat, whether any role in
the account has a permissions boundary, and when the role's review falls due.

A finding is only reported when its rule holds exactly (a false warning is a defect); the
rules are in docs/access-review.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.aws.types import Role
from app.policy.model import Finding
from app.policy.risk import GATE_TIMEOUT, HeldPolicy, role_risks
from app.policy.role_review import trust_findings

# Finding kinds, in the order the page lists them: (id, label).
KINDS: tuple[tuple[str, str], ...] = (
    ("unused", "Unused"),
    ("admin", "Administrator access"),
    ("escalation", "Privilege escalation"),
    ("trust", "Trust"),
    ("inline", "Inline where managed would do"),
    ("boundary", "No permissions boundary"),
    ("overdue", "Review overdue"),
)
KIND_LABELS = dict(KINDS)
TRUST_CODES = frozenset(
    {
        "TRUST_ANY_PRINCIPAL",
        "TRUST_CROSS_ACCOUNT_NO_CONDITION",
        "TRUST_OIDC_NO_AUDIENCE",
        "TRUST_GITHUB_NO_SUB",
    }
)
# RoleDesk's "revoke older sessions" policy is inline by design: one per role, with its date.
INLINE_BY_DESIGN = frozenset({"AWSRevokeOlderSessions"})


@dataclass(frozen=True)
class ReviewFinding:
    kind: str
    message: str
    subject: str = ""

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]


def document_digest(document: Any) -> str:
    """The same digest for the same policy, however its keys are ordered."""
    text = document if isinstance(document, str) else json.dumps(document, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def policy_findings(
    role: Role,
    held: list[HeldPolicy],
    boundary: HeldPolicy | None,
    account_id: str,
    *,
    timeout: float = GATE_TIMEOUT,
) -> tuple[tuple[ReviewFinding, ...], bool]:
    """(findings of the policy checks, complete?) for a role holding `held`.

    Incomplete when the privilege-escalation scan did not answer within `timeout`: the page
    then says the role's check is unfinished instead of reporting nothing."""
    found: list[ReviewFinding] = []
    for f in trust_findings(role.trust_policy, account_id):
        if f.code in TRUST_CODES:
            found.append(ReviewFinding("trust", f.message))
    complete = True
    paths: list[Finding] = []
    for f in role_risks(held, boundary, timeout=timeout):
        kind = _risk_kind(f)
        if kind == "escalation":
            paths.append(f)
        elif kind is not None:
            found.append(ReviewFinding(kind, f.message, f.subject))
        complete = complete and f.code != "RISK_SCAN_PENDING"
    if paths:
        found.append(_escalation(paths))
    return tuple(found), complete


def _escalation(paths: list[Finding]) -> ReviewFinding:
    """One finding for every escalation path of the role (a role with PowerUserAccess has a
    dozen); the role page lists each with its actions."""
    if len(paths) == 1:
        return ReviewFinding("escalation", paths[0].message, paths[0].subject)
    names = [f.code.removeprefix("PRIVILEGE_ESCALATION_") for f in paths]
    subjects = sorted({s for f in paths for s in f.subject.split(", ") if s})
    return ReviewFinding(
        "escalation",
        f"{len(paths)} ways for the role to give itself more permissions ({', '.join(names)}), "
        f"through {', '.join(subjects) or 'its policies'}. The role page lists each path's "
        "actions.",
        ", ".join(subjects),
    )


def _risk_kind(f: Finding) -> str | None:
    # A boundary that does not itself allow everything turns ADMIN_ACCESS into a warning:
    # the role is not administrator-equivalent then.
    if f.code == "ADMIN_ACCESS" and f.level == "security_warning":
        return "admin"
    if f.code.startswith("PRIVILEGE_ESCALATION_"):
        return "escalation"
    return None


def unused_finding(role: Role, now: datetime, days: int) -> ReviewFinding | None:
    """Not used for more than `days` days: last used before then, or never used and
    created before then. None when the last use is not known."""
    if role.last_used is None:
        return None
    cutoff = now - timedelta(days=days)
    used = role.last_used.last_used
    if used is not None:
        if used < cutoff:
            return ReviewFinding("unused", f"Last used {used:%Y-%m-%d}, more than {days} days ago.")
        return None
    if role.created < cutoff:
        return ReviewFinding(
            "unused",
            f"Never used (as far as IAM tracks, 400 days) and created {role.created:%Y-%m-%d}, "
            f"more than {days} days ago.",
        )
    return None


def inline_findings(
    inline_digests: Mapping[str, str],
    inline_counts: Mapping[str, int],
    managed_digests: Mapping[str, str],
) -> list[ReviewFinding]:
    """Inline policies whose document another role also holds inline, or that a customer
    managed policy already holds: one managed policy would serve every holder."""
    found = []
    for name, digest in sorted(inline_digests.items()):
        if name in INLINE_BY_DESIGN:
            continue
        same = managed_digests.get(digest)
        if same is not None:
            found.append(
                ReviewFinding(
                    "inline",
                    f"Inline policy {name} is the same document as the managed policy {same}: "
                    "attach that instead.",
                    name,
                )
            )
        elif inline_counts.get(digest, 0) > 1:
            others = inline_counts[digest] - 1
            found.append(
                ReviewFinding(
                    "inline",
                    f"Inline policy {name} is the same document as an inline policy of "
                    f"{others} other role{'s' if others != 1 else ''}: one managed policy "
                    "would serve them all.",
                    name,
                )
            )
    return found


def is_service_linked(role: Role) -> bool:
    """Service-linked roles belong to an AWS service: no boundary can be set on them."""
    return role.path.startswith("/aws-service-role/")


def boundary_finding(role: Role, account_uses_boundaries: bool) -> ReviewFinding | None:
    if (
        not account_uses_boundaries
        or role.permissions_boundary_arn is not None
        or is_service_linked(role)
    ):
        return None
    return ReviewFinding(
        "boundary",
        "No permissions boundary, while other roles in this account have one.",
    )


def overdue_finding(due: datetime | None, now: datetime) -> ReviewFinding | None:
    if due is None or due >= now:
        return None
    return ReviewFinding("overdue", f"The review fell due on {due:%Y-%m-%d}.")
