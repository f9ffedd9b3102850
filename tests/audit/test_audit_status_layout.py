"""PostgreSQL's status table keeps settled events in the order they were written, however
often vacuum runs (migration 0012_status_settled_apart).

Each change's status row is written with its intent and rewritten with its outcome. In one
table, vacuum freed each rewrite's old version and later events went into that space, in
older pages: at a million events the newest were spread over the whole table and a search for
a busy role's name read 58-82 ms cold instead of 15-24 ms. With pending rows in a partition of
their own, the settled partition only gets inserts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from app.audit.log import AuditLog, NewEntry
from app.db import Database
from tests.audit.helpers import ledger


@pytest.fixture
def pg(postgres_url) -> Iterator[tuple[Database, AuditLog]]:
    """A migrated PostgreSQL database and a log on it."""
    db = ledger(postgres_url)
    yield db, AuditLog(db)
    db.dispose()


def changes(log: AuditLog, count: int, start: int) -> None:
    """`count` changes as RoleDesk writes them: an intent, then its outcome."""
    for i in range(start, start + count):
        intent = log.append(
            NewEntry(
                kind="intent",
                action="iam:AttachRolePolicy",
                actor="alice",
                outcome="pending",
                target=f"arn:aws:iam::123456789012:role/role-{i:05d}",
                params={"PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
            )
        )
        log.append(
            NewEntry(
                kind="outcome",
                event_id=intent.event_id,
                action="iam:AttachRolePolicy",
                actor="alice",
                outcome="succeeded",
                aws_request_id=f"request-{i}",
            )
        )


def blocks(conn, low: int, high: int) -> list[int]:
    """The heap block of each settled event with a seq in [low, high]."""
    rows = conn.execute(
        text(
            "SELECT (ctid::text::point)[0]::int FROM audit_event_status_settled "
            "WHERE seq BETWEEN :low AND :high"
        ),
        {"low": low, "high": high},
    )
    return [block for (block,) in rows]


def test_events_written_after_a_vacuum_do_not_go_into_older_pages(pg):
    db, log = pg
    vacuum = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    changes(log, 600, 0)
    with vacuum.connect() as conn:
        conn.execute(text("VACUUM audit_event_status"))
        head = conn.execute(text("SELECT max(seq) FROM audit_event_status")).scalar_one()
        older = blocks(conn, 0, head)
    changes(log, 300, 600)
    with vacuum.connect() as conn:
        newer = blocks(conn, head + 1, head + 10_000)
        pending = conn.execute(text("SELECT count(*) FROM audit_event_status_pending")).scalar()
    assert len(older) == 600 and len(newer) == 300
    assert pending == 0  # every change has its outcome: none is left in flight
    # Every later event sits in the last page of before or after it, none in the freed space
    # of earlier pages (in one table, at migration 0011, 50 of 300 did).
    assert min(newer) >= max(older), (min(newer), max(older))


def test_a_pending_event_is_listed_with_the_settled_ones_in_seq_order(pg):
    """Queries read the parent table: both partitions, merged in seq order."""
    db, log = pg
    changes(log, 3, 0)
    in_flight = log.append(
        NewEntry(kind="intent", action="iam:CreateRole", actor="bob", outcome="pending")
    )
    changes(log, 2, 3)
    with db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT seq, outcome FROM audit_event_status ORDER BY seq DESC LIMIT 4")
        ).all()
        where = conn.execute(
            text("SELECT tableoid::regclass::text FROM audit_event_status WHERE seq = :s"),
            {"s": in_flight.seq},
        ).scalar_one()
    assert [outcome for _, outcome in rows] == ["succeeded", "succeeded", "pending", "succeeded"]
    assert [seq for seq, _ in rows] == sorted((seq for seq, _ in rows), reverse=True)
    assert where == "audit_event_status_pending"
