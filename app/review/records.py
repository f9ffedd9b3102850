"""Review decisions: stored in the database and recorded in the audit history.

A review is not an AWS change, so it is an audit `record` entry (who, when, the decision and
note), written before the review row: a review the audit history does not show is never
stored. A role's next review falls due `interval_for(role)` days later: the configured
default, or the shortest of the intervals set for a path prefix or tag the role matches.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.audit.audited import AuditContext
from app.audit.log import AuditLog
from app.aws.types import Role
from app.db import Database
from app.review.models import AccessReview

DECISIONS: dict[str, str] = {
    "keep": "Reviewed: keep",
    "change": "Reviewed: change needed",
    "remove": "Reviewed: remove",
}
NOTE_MAX = 2000
AUDIT_ACTION = "roledesk:RecordAccessReview"


@dataclass(frozen=True)
class Review:
    role_name: str
    role_arn: str
    decision: str
    note: str
    reviewer: str
    reviewed_at: datetime
    due_at: datetime

    @property
    def decision_label(self) -> str:
        return DECISIONS.get(self.decision, self.decision)


def _utc(value: datetime) -> datetime:
    # SQLite gives naive datetimes back; every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _review(row: AccessReview) -> Review:
    return Review(
        role_name=row.role_name,
        role_arn=row.role_arn,
        decision=row.decision,
        note=row.note,
        reviewer=row.reviewer,
        reviewed_at=_utc(row.reviewed_at),
        due_at=_utc(row.due_at),
    )


def interval_for(role: Role, default: int, rules: Mapping[str, int]) -> int:
    """Days between reviews for `role`: the shortest matching rule, else `default`.

    Rules: "path:/prefix/" matches a role whose path starts with the prefix; "tag:Key=Value"
    a role with that tag; "tag:Key" a role with that tag key, whatever its value."""
    tags = {t.key: t.value for t in role.tags}
    matching = []
    for rule, days in rules.items():
        kind, _, spec = rule.partition(":")
        if kind == "path" and spec and role.path.startswith(spec):
            matching.append(days)
        elif kind == "tag" and spec:
            key, has_value, value = spec.partition("=")
            if key in tags and (not has_value or tags[key] == value):
                matching.append(days)
    return min(matching) if matching else default


def rule_problems(rules: Mapping[str, int]) -> list[str]:
    """What is wrong with configured interval rules (Settings refuses them at start)."""
    problems = []
    for rule, days in rules.items():
        kind, _, spec = rule.partition(":")
        if kind not in ("path", "tag") or not spec:
            problems.append(f"{rule!r}: use path:/prefix/ or tag:Key=Value or tag:Key")
        if not 1 <= days <= 3650:
            problems.append(f"{rule!r}: the interval is 1 to 3650 days")
    return problems


class ReviewRecords:
    def __init__(self, db: Database, audit_log: AuditLog, account_id: str) -> None:
        self._db = db
        self._audit_log = audit_log
        self._account_id = account_id
        self._latest: tuple[int, dict[str, Review]] | None = None
        self._lock = threading.Lock()

    def record(
        self,
        ctx: AuditContext,
        role: Role,
        decision: str,
        note: str,
        interval_days: int,
        now: datetime | None = None,
    ) -> Review:
        """Store a decision for `role`, audited first."""
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r}")
        now = now or datetime.now(UTC)
        due = now + timedelta(days=interval_days)
        event = self._audit_log.append(
            ctx.record(
                AUDIT_ACTION,
                account_id=self._account_id,
                target=role.arn,
                params={
                    "roleName": role.name,
                    "decision": decision,
                    "note": note,
                    "nextReviewDue": due.strftime("%Y-%m-%d"),
                },
            )
        )
        row = AccessReview(
            role_name=role.name,
            role_arn=role.arn,
            decision=decision,
            note=note,
            reviewer=ctx.actor,
            reviewed_at=now,
            due_at=due,
            audit_event_id=event.event_id,
        )
        with self._db.session() as session:
            session.add(row)
        return _review(row)

    def latest(self) -> Mapping[str, Review]:
        """Each role's latest review, by role name (do not modify it).

        Kept in memory and read again only when a review was stored since (by this process
        or another worker): rows are only ever added, so the highest id tells."""
        with self._db.session() as session:
            head = session.scalar(select(func.max(AccessReview.id))) or 0
            with self._lock:
                if self._latest is not None and self._latest[0] == head:
                    return self._latest[1]
            newest = (
                select(func.max(AccessReview.id))
                .where(AccessReview.id <= head)
                .group_by(AccessReview.role_name)
                .scalar_subquery()
            )
            rows = session.scalars(select(AccessReview).where(AccessReview.id.in_(newest)))
            found = {r.role_name: _review(r) for r in rows}
        with self._lock:
            self._latest = (head, found)
        return found

    def history(self, role_name: str) -> list[Review]:
        with self._db.session() as session:
            rows = session.scalars(
                select(AccessReview)
                .where(AccessReview.role_name == role_name)
                .order_by(AccessReview.id.desc())
            )
            return [_review(r) for r in rows]

    def all(self) -> Iterator[Review]:
        """Every review, oldest first (the export)."""
        with self._db.session() as session:
            for row in session.scalars(select(AccessReview).order_by(AccessReview.id)):
                yield _review(row)
