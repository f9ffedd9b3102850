"""Database engine and sessions, built from settings (nothing at import time).

SQLite gets WAL, a busy timeout and foreign keys; transactions that must serialise (the audit
chain head) ask for `BEGIN IMMEDIATE` through the `sqlite_immediate` execution option.
PostgreSQL serialises them with an advisory lock instead (see app.audit.log).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    pass


def _sqlite_tuning(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    writers = _ProcessWriters()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        if not conn.get_execution_options().get("sqlite_immediate"):
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_connection = conn.connection.dbapi_connection
        writers.acquire(dbapi_connection)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.release(dbapi_connection)
            raise

    # Let the next writer of this process in once the transaction has ended (committed, or
    # rolled back: by the caller, or by the pool when a connection comes back mid-transaction).
    def releasing(end: Callable[[Any], None]) -> Callable[[Any], None]:
        def ended(dbapi_connection: Any) -> None:
            try:
                end(dbapi_connection)
            finally:
                writers.release(dbapi_connection)

        return ended

    dialect = engine.dialect
    dialect.do_commit = releasing(dialect.do_commit)  # type: ignore[method-assign,assignment]
    dialect.do_rollback = releasing(dialect.do_rollback)  # type: ignore[method-assign,assignment]

    # A connection thrown away mid-transaction (an error invalidated it, or it was closed)
    # ends its transaction too.
    @event.listens_for(engine, "invalidate")
    def on_invalidate(dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        writers.release(dbapi_connection)

    @event.listens_for(engine, "close")
    def on_close(dbapi_connection: Any, _record: Any) -> None:
        writers.release(dbapi_connection)


class _ProcessWriters:
    """The write transactions (`BEGIN IMMEDIATE`) of this process's threads, one at a time,
    queued on a lock.

    Without it they queue inside SQLite, whose busy handler sleeps 1, 2, 5, 10, 15... ms
    between tries: a writer that met the lock taken slept past its release, on the audit
    ledger's commits between a create's dependent AWS calls too (measured: 13 ms between
    CreateInstanceProfile's answer and AddRoleToInstanceProfile behind a 4 ms write). Here
    the next writer wakes when the lock is let go. Other processes still meet SQLite's own
    lock and busy timeout. The connection whose transaction holds it lets it go (a read
    transaction ending meanwhile, on another connection, does not); after BUSY_SECONDS the wait
    fails as SQLite's busy timeout would."""

    BUSY_SECONDS = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: object | None = None  # the DBAPI connection in the write transaction

    def acquire(self, connection: object) -> None:
        if not self._lock.acquire(timeout=self.BUSY_SECONDS):
            raise sqlite3.OperationalError("database is locked (by this process's writers)")
        self._holder = connection

    def release(self, connection: object) -> None:
        """Let go if `connection`'s transaction holds it (not for a read transaction's end).
        `connection`: the DBAPI connection, or the pool's proxy of it (what the dialect's
        commit and rollback are given)."""
        connection = getattr(connection, "dbapi_connection", connection)
        if connection is not None and connection is self._holder:
            self._holder = None
            self._lock.release()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        if ":memory:" not in url:
            _sqlite_tuning(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._on_dispose: list[Callable[[], None]] = []

    def on_dispose(self, close: Callable[[], None]) -> None:
        """Run `close` at dispose: for connections kept outside the pool (the audit writer's),
        which the engine's own dispose does not close."""
        self._on_dispose.append(close)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session for a read-then-write transaction that must not interleave with another.
        On SQLite it takes the write lock at the start (BEGIN IMMEDIATE, waiting up to the busy
        timeout): a deferred transaction that read first cannot become a write after another
        connection wrote, and fails with "database is locked". On PostgreSQL the caller takes
        row locks (SELECT ... FOR UPDATE) on what it reads."""
        options = {"sqlite_immediate": True} if self.is_sqlite else {}
        with self.sessions() as session:
            session.connection(execution_options=options)
            yield session
            session.commit()

    def dispose(self) -> None:
        for close in self._on_dispose:
            close()
        self.engine.dispose()
