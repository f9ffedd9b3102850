"""A history page's rows come from the status table alone (migration 0013_status_page_columns):
every listed column must be what the ledger's entries say, whichever path wrote the row (the
transactional append, PostgreSQL's one statement, `roledesk audit reindex`, the migration's
copy of an older database)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from app import migrate
from app.audit.chain import GENESIS_HASH, entry_hash
from app.audit.log import NewEntry, rebuild_status_index
from app.audit.query import AuditFilters, AuditQueries, EventRow
from app.db import Database
from app.models import AuditEvent

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app-server"
WHERE = {"source_ip": "10.0.0.7", "account_id": ACCOUNT, "region": "eu-west-1"}


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request):
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


def change(event_id: str, operation: str) -> NewEntry:
    return NewEntry(
        kind="intent",
        action="iam:AttachRolePolicy",
        actor="alice",
        outcome="pending",
        event_id=event_id,
        operation_id=operation,
        target=ROLE,
        params={"role_name": "app-server"},
        **WHERE,
    )


def outcome(event_id: str, result: str, request: str | None, error: str | None) -> NewEntry:
    """The outcome entry of `change(event_id, ...)`: AWS's answer, no operation or parameters."""
    return replace(
        change(event_id, ""),
        kind="outcome",
        outcome=result,
        operation_id=None,
        params=None,
        aws_request_id=request,
        error_code=error,
        error_message=f"{error}: the policy is not attachable." if error else None,
    )


# Each event's entries, in the order written: a refused change, a record carrying request
# and error fields of its own (not an outcome's: the history shows none for a record), a
# change in flight, and a change whose first outcome was unknown and a later one settled it.
EVENTS = [
    [change("e-failed", "op-1"), outcome("e-failed", "failed", "req-1", "NoSuchEntity")],
    [
        NewEntry(
            kind="record",
            action="roledesk:SignIn",
            actor="bob",
            outcome="failed",
            event_id="e-record",
            aws_request_id="not-an-outcome",
            error_code="BadPassword",
            **WHERE,
        )
    ],
    [change("e-pending", "op-2")],
    [
        change("e-settled-later", "op-3"),
        outcome("e-settled-later", "unknown", None, None),
        outcome("e-settled-later", "succeeded", "req-4", None),
    ],
]


def listed_by_the_ledger(db: Database) -> list[EventRow]:
    """The history's rows as the ledger's entries say: each event's intent or record entry
    with its latest outcome entry, newest first."""
    with db.engine.connect() as conn:
        entries = [dict(r._mapping) for r in conn.execute(select(AuditEvent).order_by("seq"))]
    events: dict[str, list[dict[str, object]]] = {}
    for entry in entries:
        events.setdefault(str(entry["event_id"]), []).append(entry)
    rows = []
    for first, *outcomes in events.values():
        latest = outcomes[-1] if outcomes else None
        own = {f.name: first[f.name] for f in fields(EventRow) if f.name in first}
        pending = first["kind"] == "intent" and latest is None
        rows.append(
            EventRow(
                **own
                | {
                    "outcome": latest["outcome"] if latest else first["outcome"],
                    "outcome_seq": latest["seq"] if latest else None,
                    "completed_at": latest["recorded_at"] if latest else None,
                    "aws_request_id": latest["aws_request_id"] if latest else None,
                    "error_code": latest["error_code"] if latest else None,
                    "error_message": latest["error_message"] if latest else None,
                }
                | ({"outcome": "pending"} if pending else {})
            )
        )
    return sorted(rows, key=lambda row: -row.seq)


def listed_by_the_history(db: Database) -> list[EventRow]:
    return AuditQueries(db, ACCOUNT).page(AuditFilters()).rows


def test_each_append_path_and_the_rebuild_list_what_the_ledger_says(db, log):
    # One at a time: on PostgreSQL, after the first append, the one-statement path.
    for entries in EVENTS:
        for entry in entries:
            log.append(entry)
    # Together: an outcome with its intent in one batch takes the transactional path.
    for entries in EVENTS:
        log.append_all([change(f"{e.event_id}-2", "op-5") for e in entries[:1]])
    log.append_all([change("e-together", "op-6"), outcome("e-together", "failed", "r", "X")])
    expected = listed_by_the_ledger(db)
    assert len(expected) == len(EVENTS) * 2 + 1
    assert {row.error_code for row in expected} == {None, "NoSuchEntity", "X"}
    assert listed_by_the_history(db) == expected
    rebuild_status_index(db)
    assert listed_by_the_history(db) == expected


def test_the_upgrade_copies_the_listed_columns_from_the_ledger(any_db_url):
    """A database written before 0013 (its ledger, and the status rows the earlier migrations
    derived from it) lists the same rows after the upgrade, and again after a downgrade and
    another upgrade."""
    migrate.upgrade(any_db_url, "0001_audit")
    db = Database(any_db_url)
    try:
        prev, seq = GENESIS_HASH, 0
        start = datetime(2026, 11, 1, tzinfo=UTC)
        with db.engine.begin() as conn:
            for entry in (entry for entries in EVENTS for entry in entries):
                seq += 1
                row = vars(entry) | {"seq": seq, "recorded_at": start + timedelta(seconds=seq)}
                row |= {"prev_hash": prev, "hash": entry_hash(prev, row)}
                prev = row["hash"]
                conn.execute(insert(AuditEvent.__table__).values(**row))
        migrate.upgrade(any_db_url, "0012_status_settled_apart")
        migrate.upgrade(any_db_url)
        expected = listed_by_the_ledger(db)
        assert [row.event_id for row in expected] == [
            "e-settled-later",
            "e-pending",
            "e-record",
            "e-failed",
        ]
        assert listed_by_the_history(db) == expected
        migrate.downgrade(any_db_url, "0012_status_settled_apart")
        migrate.upgrade(any_db_url)
        assert listed_by_the_history(db) == expected
    finally:
        db.dispose()
