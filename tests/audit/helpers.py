"""Shared helpers for the audit ledger tests: a migrated database with entries, and the
"attacker with database access" who drops the append-only triggers first."""

from __future__ import annotations

from sqlalchemy import insert, text

from app import migrate
from app.audit.chain import entry_hash
from app.audit.log import AuditLog, NewEntry
from app.audit.verify import stream_entries
from app.db import Database
from app.models import AuditEvent

ACCOUNT = "123456789012"


def ledger(url: str, count: int = 0) -> Database:
    migrate.upgrade(url)
    db = Database(url)
    log = AuditLog(db)
    for i in range(count):
        log.append(
            NewEntry(
                kind="record",
                action="roledesk:Test",
                actor=f"user{i % 3}",
                outcome="succeeded",
                target=f"target-{i}",
                params={"i": i},
            )
        )
    return db


def drop_triggers(db: Database) -> None:
    with db.engine.begin() as conn:
        if db.is_sqlite:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))


def execute(db: Database, sql: str, **params: object) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


def renumber_and_recompute(db: Database, removed_seq: int) -> None:
    """Delete one entry, renumber the rest and recompute every hash: a consistent forgery."""
    rows = list(stream_entries(db))
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))
        prev = rows[0]["prev_hash"]
        seq = 0
        for row in rows:
            if row["seq"] == removed_seq:
                continue
            seq += 1
            row["seq"] = seq
            row["prev_hash"] = prev
            row["hash"] = entry_hash(prev, row)
            prev = row["hash"]
            conn.execute(insert(AuditEvent.__table__).values(**row))


def change(log, *, action, target, actor="alice", outcome="succeeded", op="op-1", **extra):
    """An intent and (unless pending) its outcome, as the audited path writes them."""
    intent = log.append(
        NewEntry(
            kind="intent",
            action=action,
            actor=actor,
            outcome="pending",
            operation_id=op,
            target=target,
            account_id=ACCOUNT,
            region="us-east-1",
            params=extra.pop("params", None),
            before=extra.pop("before", None),
        )
    )
    if outcome != "pending":
        log.append(
            NewEntry(
                kind="outcome",
                event_id=intent.event_id,
                action=action,
                actor=actor,
                outcome=outcome,
                operation_id=op,
                target=target,
                **extra,
            )
        )
    return intent.seq
