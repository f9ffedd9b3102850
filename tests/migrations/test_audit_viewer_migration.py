"""0004_audit_viewer fills the outcome index from a ledger written before it existed, and
`roledesk audit reindex` rebuilds the same index from the ledger."""

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, text

from app import migrate
from app.audit.chain import GENESIS_HASH, entry_hash
from app.cli import main
from app.db import Database
from app.models import AuditEvent, AuditEventStatus


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request):
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


def write_old_ledger(db):
    """Entries as the 0001 code wrote them (no outcome index yet)."""
    from datetime import UTC, datetime

    specs = [
        ("e1", "intent", "pending"),
        ("e1", "outcome", "succeeded"),
        ("e2", "intent", "pending"),
        ("e3", "record", "failed"),
        ("e4", "intent", "pending"),
        ("e4", "outcome", "unknown"),
        ("e4", "outcome", "succeeded"),
    ]
    prev = GENESIS_HASH
    with db.engine.begin() as conn:
        for seq, (event_id, kind, outcome) in enumerate(specs, start=1):
            row = {
                "seq": seq,
                "event_id": event_id,
                "kind": kind,
                "outcome": outcome,
                "recorded_at": datetime.now(UTC),
                "actor": "a",
                "action": "x",
            }
            row |= {"prev_hash": prev, "hash": entry_hash(prev, row)}
            prev = row["hash"]
            conn.execute(insert(AuditEvent.__table__).values(**row))


def status(db):
    with db.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    AuditEventStatus.seq,
                    AuditEventStatus.event_id,
                    AuditEventStatus.outcome,
                    AuditEventStatus.outcome_seq,
                ).order_by(AuditEventStatus.seq)
            )
        ]


EXPECTED = [
    (1, "e1", "succeeded", 2),
    (3, "e2", "pending", None),
    (4, "e3", "failed", None),
    (5, "e4", "succeeded", 7),
]


def test_upgrade_backfills_and_reindex_rebuilds(any_db_url):
    migrate.upgrade(any_db_url, "0001_audit")
    db = Database(any_db_url)
    try:
        write_old_ledger(db)
        migrate.upgrade(any_db_url)
        assert status(db) == EXPECTED
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_event_status WHERE seq = 1"))
        result = CliRunner().invoke(
            main, ["audit", "reindex"], env={"ROLEDESK_DATABASE_URL": any_db_url}
        )
        assert result.exit_code == 0 and "4 events" in result.output
        assert status(db) == EXPECTED
    finally:
        db.dispose()
