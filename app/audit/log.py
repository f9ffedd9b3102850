"""Appending to the audit ledger: one chain, one writer at a time.

The chain head is read and extended inside one transaction that holds a lock: PostgreSQL's
transaction-scoped advisory lock, or SQLite's `BEGIN IMMEDIATE` write lock. So several server
processes writing at once still produce one unbroken chain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS_HASH, entry_hash
from app.db import Database
from app.models import AuditEvent, AuditEventStatus

# Arbitrary constant naming the chain lock among PostgreSQL advisory locks.
_PG_CHAIN_LOCK = 0x526F6C6544657368  # "RoleDesh"

SECRET_KEYS = frozenset(
    {"password", "secret", "secretaccesskey", "sessiontoken", "token", "privatekey"}
)


def redact(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Drop values whose key names a secret; request parameters are stored, secrets never."""
    if params is None:
        return None
    return {
        k: ("[redacted]" if k.lower().replace("_", "") in SECRET_KEYS else v)
        for k, v in params.items()
    }


@dataclass
class NewEntry:
    """What a caller knows about an entry; the log adds seq, time and hashes."""

    kind: str
    action: str
    actor: str
    outcome: str
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    operation_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    account_id: str | None = None
    region: str | None = None
    target: str | None = None
    params: dict[str, Any] | None = None
    aws_request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, new: NewEntry) -> AuditEvent:
        """Append one entry in its own committed transaction and return it."""
        return self.append_many([new])[0]

    def append_many(self, entries: list[NewEntry]) -> list[AuditEvent]:
        options = {"sqlite_immediate": True} if self._db.is_sqlite else {}
        with self._db.sessions() as session:
            # Begins the transaction: BEGIN IMMEDIATE on SQLite takes the write lock up front.
            session.connection(execution_options=options)
            rows = self._extend_chain(session, entries)
            session.commit()
        return rows

    def _extend_chain(self, session: Session, entries: list[NewEntry]) -> list[AuditEvent]:
        if not self._db.is_sqlite:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
        head = session.execute(
            select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
        rows = []
        for new in entries:
            seq += 1
            values: dict[str, Any] = {
                **new.__dict__,
                "params": redact(new.params),
                "seq": seq,
                "recorded_at": datetime.now(UTC),
            }
            row = AuditEvent(**values, prev_hash=prev, hash=entry_hash(prev, values))
            session.add(row)
            rows.append(row)
            prev = row.hash
        session.flush()
        _track_outcomes(session, rows)
        return rows


def _track_outcomes(session: Session, rows: list[AuditEvent]) -> None:
    """Keep the derived `audit_event_status` index in step, in the same transaction."""
    for row in rows:
        if row.kind == "outcome":
            session.execute(
                update(AuditEventStatus)
                .where(AuditEventStatus.event_id == row.event_id)
                .values(outcome=row.outcome, outcome_seq=row.seq)
            )
        else:
            session.execute(
                insert(AuditEventStatus).values(
                    seq=row.seq,
                    event_id=row.event_id,
                    outcome="pending" if row.kind == "intent" else row.outcome,
                    outcome_seq=None,
                )
            )


REBUILD_STATUS_SQL = """
INSERT INTO audit_event_status (seq, event_id, outcome, outcome_seq)
SELECT e.seq, e.event_id,
       COALESCE(o.outcome, CASE WHEN e.kind = 'intent' THEN 'pending' ELSE e.outcome END),
       o.seq
FROM audit_events e
LEFT JOIN audit_events o ON o.seq = (
    SELECT MAX(x.seq) FROM audit_events x WHERE x.event_id = e.event_id AND x.kind = 'outcome'
)
WHERE e.kind IN ('intent', 'record')
"""


def rebuild_status_index(db: Database) -> int:
    """Refill `audit_event_status` from the ledger (it is derived; the ledger is the record)."""
    options = {"sqlite_immediate": True} if db.is_sqlite else {}
    with db.sessions() as session:
        session.connection(execution_options=options)  # the writers' lock, as in append
        if not db.is_sqlite:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
        session.execute(delete(AuditEventStatus))
        session.execute(text(REBUILD_STATUS_SQL))
        count = int(session.scalar(select(func.count()).select_from(AuditEventStatus)) or 0)
        session.commit()
    return count
