"""PostgreSQL's one-statement append (app.audit.pg_append): a process whose remembered chain
head is stale (another process appended since) writes nothing and falls back to reading the
head under the lock, so the chain never forks; outcomes keep the derived index in step."""

from __future__ import annotations

from sqlalchemy import select, text

import app.audit.log as audit_log_module
from app.audit.log import AuditLog, NewEntry
from app.audit.verify import verify_database
from app.models import AuditEvent, AuditEventStatus
from tests.audit.helpers import ledger


def record(log: AuditLog, actor: str) -> AuditEvent:
    return log.append(NewEntry(kind="record", action="roledesk:Test", actor=actor, outcome="ok"))


def test_two_writers_with_stale_heads_still_make_one_chain(postgres_url):
    db = ledger(postgres_url)
    first, second = AuditLog(db), AuditLog(db)  # as two processes: each remembers its head
    try:
        seqs = [record(first, "a").seq, record(first, "a").seq]  # `first` now knows head 2
        seqs += [record(second, "b").seq, record(second, "b").seq]  # chain moved on to 4
        seqs.append(record(first, "a").seq)  # stale head 2: refused, then appended at 5
        seqs.append(record(first, "a").seq)  # head known again: one statement
        assert seqs == [1, 2, 3, 4, 5, 6]
        result = verify_database(db)
        assert result.ok and result.head.seq == 6
    finally:
        db.dispose()


def test_outcome_in_one_statement_updates_the_derived_index(postgres_url):
    db = ledger(postgres_url)
    log = AuditLog(db)
    try:
        record(log, "warm-up")  # the head is now known: the next appends take one statement
        intent = log.append(
            NewEntry(kind="intent", action="iam:DeleteRole", actor="c", outcome="pending")
        )
        log.append(
            NewEntry(
                kind="outcome",
                event_id=intent.event_id,
                action="iam:DeleteRole",
                actor="c",
                outcome="failed",
                target="arn:aws:iam::123456789012:role/x",
            )
        )
        with db.engine.connect() as conn:
            row = conn.execute(
                select(
                    AuditEventStatus.outcome,
                    AuditEventStatus.outcome_seq,
                    AuditEventStatus.actor,
                    AuditEventStatus.action,
                ).where(AuditEventStatus.seq == intent.seq)
            ).one()
        assert tuple(row) == ("failed", intent.seq + 1, "c", "iam:DeleteRole")
        assert verify_database(db).ok
    finally:
        db.dispose()


def test_kept_writer_connection_survives_a_server_side_disconnect(postgres_url, monkeypatch):
    """Appends keep one connection; if the server drops it while idle (a restart, an idle
    timeout), the next append pings, reconnects and carries on without losing the chain."""
    db = ledger(postgres_url)
    log = AuditLog(db)
    try:
        record(log, "a")
        record(log, "a")  # now on the kept connection, one statement per append
        writer_pid = log._writer().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with db.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": writer_pid})
        monkeypatch.setattr(audit_log_module, "_PING_AFTER_IDLE", -1.0)  # idle long enough
        assert record(log, "a").seq == 3
        assert log._writer().exec_driver_sql("SELECT pg_backend_pid()").scalar() != writer_pid
        result = verify_database(db)
        assert result.ok and result.head.seq == 3
    finally:
        db.dispose()
