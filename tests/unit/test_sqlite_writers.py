"""SQLite write transactions of one process queue on a lock of RoleDesk's (app.db), not in
SQLite's sleeping busy handler. What must hold: no update is lost and nothing fails with
"database is locked" under many threads; a transaction that ends any way (commit, rollback,
an error, a connection thrown away) lets the next writer in; read transactions are never
held up by it. Real threads on a real SQLite file."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from app import db as app_db
from app.db import Database


@pytest.fixture
def database(sqlite_url: str) -> Database:
    database = Database(sqlite_url)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO counter VALUES (0)")
    return database


def _count(database: Database) -> int:
    with database.session() as session:
        return int(session.execute(text("SELECT n FROM counter")).scalar_one())


def _increment(database: Database) -> None:
    """Read, then write what was read plus one: lost if two ran interleaved."""
    with database.write_session() as session:
        n = session.execute(text("SELECT n FROM counter")).scalar_one()
        session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})


def test_no_update_is_lost_under_many_writer_threads(database: Database) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: _increment(database), range(400)))
    assert _count(database) == 400


def test_a_failed_transaction_lets_the_next_writer_in(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lock left held would fail the next write after this (instead of 30 s).
    monkeypatch.setattr(app_db._ProcessWriters, "BUSY_SECONDS", 2.0)

    def fail_inside() -> None:
        with database.write_session() as session:
            session.execute(text("UPDATE counter SET n = 99"))
            raise RuntimeError("the caller's own failure: rolled back")

    with pytest.raises(RuntimeError):
        fail_inside()
    _increment(database)
    assert _count(database) == 1


def test_a_connection_thrown_away_mid_transaction_lets_the_next_writer_in(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_db._ProcessWriters, "BUSY_SECONDS", 2.0)
    conn = database.engine.connect().execution_options(sqlite_immediate=True)
    conn.begin()
    conn.exec_driver_sql("UPDATE counter SET n = 99")
    conn.invalidate()  # e.g. after a driver error: the transaction is gone with it
    conn.close()
    done = threading.Thread(target=_increment, args=(database,))
    done.start()
    done.join(10)
    assert not done.is_alive()
    assert _count(database) == 1


def test_a_read_ending_inside_a_write_does_not_let_another_writer_in(
    database: Database,
) -> None:
    entered = threading.Event()
    order: list[str] = []

    def other_writer() -> None:
        with database.write_session() as session:
            order.append("other writes")
            session.execute(text("UPDATE counter SET n = n + 10"))
        entered.set()

    with database.write_session() as session:
        session.execute(text("UPDATE counter SET n = n + 1"))
        assert _count(database) == 0  # a read on another connection, begun and ended
        waiting = threading.Thread(target=other_writer)
        waiting.start()
        assert not entered.wait(0.3)
        order.append("first commits")
    waiting.join(10)
    assert order == ["first commits", "other writes"]
    assert _count(database) == 11


def test_reads_do_not_wait_for_a_writer(database: Database) -> None:
    with database.write_session() as session:
        session.execute(text("UPDATE counter SET n = 5"))
        read = ThreadPoolExecutor(1).submit(_count, database)
        assert read.result(timeout=5) == 0  # WAL: the committed state, at once
    assert _count(database) == 5
