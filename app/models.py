"""SQLAlchemy models. Alembic's env.py imports this module; keep every table here or imported
from here so `alembic check` sees them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

# Sign-in tables (issue 6), imported here so Alembic sees them.
from app.auth.models import SetupToken, SignInAttempt, User, UserSession
from app.db import Base

# The access review's records (issue 14), imported here so Alembic sees them.
from app.review.models import AccessReview

__all__ = ["AccessReview", "AuditEvent", "SetupToken", "SignInAttempt", "User", "UserSession"]


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit ledger.

    Entries are never updated: an AWS change is an `intent` entry (outcome `pending`) written
    before the call and an `outcome` entry with the same `event_id` written after it
    (succeeded, failed or unknown). RoleDesk's own actions that need no AWS call are single
    `record` entries. `hash = SHA-256(prev_hash || canonical JSON of the entry)`.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    operation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    account_id: Mapped[str | None] = mapped_column(String(12))
    region: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(128))
    target: Mapped[str | None] = mapped_column(String(2048))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(16))
    aws_request_id: Mapped[str | None] = mapped_column(String(128))
    error_code: Mapped[str | None] = mapped_column(String(128))
    error_message: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Filters read audit_event_status (below), which carries the filterable columns.


class AuditEventStatus(Base):
    """Each event's filterable columns and current outcome: a derived index over the ledger,
    not part of it.

    One row per `intent` or `record` entry (keyed by its seq), written in the same transaction
    as the ledger entries: `pending` for an intent, then the outcome of its latest `outcome`
    entry, next to copies of every column the history lists. It exists so every filter
    combination of the history is one walk of one (filters..., seq) index, newest first, that
    stops after a page, and the page's rows come from it alone; `roledesk audit reindex`
    rebuilds it from the ledger, which stays the record (an event's own page reads the
    ledger's entries, and `roledesk audit verify` checks them).

    On PostgreSQL the table is partitioned by outcome (migration 0012_status_settled_apart):
    `pending` rows in one partition, every other in a second that only ever gets inserts (an
    outcome moves its row there), so settled events stay in the order they were written
    however often vacuum runs. Each partition has its own primary key and unique event_id
    (a partitioned table's cannot leave out the partition key); queries read this table.
    """

    __tablename__ = "audit_event_status"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_seq: Mapped[int | None] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(128))
    target: Mapped[str | None] = mapped_column(String(2048))
    # The rest of what the history lists for an event (migration 0013_status_page_columns):
    # its intent or record entry's columns, then its latest outcome entry's (NULL until one is
    # written, and for a record). A page of events is then read from this table alone, in
    # seq order, instead of two ledger look-ups per event (issue 15: text search, cold).
    kind: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    operation_id: Mapped[str | None] = mapped_column(String(36))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(12))
    region: Mapped[str | None] = mapped_column(String(32))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    aws_request_id: Mapped[str | None] = mapped_column(String(128))
    error_code: Mapped[str | None] = mapped_column(String(128))
    error_message: Mapped[str | None] = mapped_column(Text)
    # The event's text for the history's search box (app.audit.search); indexed with pg_trgm
    # on PostgreSQL only, so `alembic check` skips that index elsewhere (migrations/env.py).
    search: Mapped[str | None] = mapped_column(Text)

    # One index per combination of equality filters, each ending in seq (the keyset order).
    # Target is narrow on its own (a role's events), so it is not combined.
    __table_args__ = (
        Index("ix_audit_event_status_outcome_seq", "outcome", "seq"),
        Index("ix_audit_event_status_actor_seq", "actor", "seq"),
        Index("ix_audit_event_status_action_seq", "action", "seq"),
        Index("ix_audit_event_status_target_seq", "target", "seq"),
        Index("ix_audit_event_status_actor_outcome_seq", "actor", "outcome", "seq"),
        Index("ix_audit_event_status_action_outcome_seq", "action", "outcome", "seq"),
        Index("ix_audit_event_status_actor_action_seq", "actor", "action", "seq"),
        Index(
            "ix_audit_event_status_actor_action_outcome_seq", "actor", "action", "outcome", "seq"
        ),
        Index(
            "ix_audit_event_status_search_trgm",
            "search",
            postgresql_using="gin",
            postgresql_ops={"search": "gin_trgm_ops"},
            info={"dialects": ("postgresql",)},
        ),
        # Rows come in seq order: a block range index lets a word search read the newest
        # part of the history first (migration 0011_status_seq_brin, app.audit.query).
        Index(
            "ix_audit_event_status_seq_brin",
            "seq",
            postgresql_using="brin",
            postgresql_with={"pages_per_range": 16},
            info={"dialects": ("postgresql",)},
        ),
    )


# AuditEventStatus's partitions on PostgreSQL (migration 0012_status_settled_apart, which keeps
# its own copy of the names): pending rows, and every settled one.
STATUS_PENDING_PARTITION = "audit_event_status_pending"
STATUS_SETTLED_PARTITION = "audit_event_status_settled"
STATUS_PARTITIONS = (STATUS_PENDING_PARTITION, STATUS_SETTLED_PARTITION)

Index("ix_audit_events_recorded_at", AuditEvent.recorded_at)


from app.shared.models import (  # noqa: E402  (registers the shared state's tables)
    SharedChange,
    SharedInventory,
    SharedItem,
    SharedLock,
)
from app.wizard.models import RoleDraft  # noqa: E402  (registers the wizard's table)

__all__ = [
    "AuditEvent",
    "AuditEventStatus",
    "RoleDraft",
    "SharedChange",
    "SharedInventory",
    "SharedItem",
    "SharedLock",
]
