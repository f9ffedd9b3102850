"""Database engine and sessions, built from settings (nothing at import time).

SQLite gets WAL, a busy timeout and foreign keys; transactions that must serialise (the audit
chain head) ask for `BEGIN IMMEDIATE` through the `sqlite_immediate` execution option.
PostgreSQL serialises them with an advisory lock instead (see app.audit.log).
"""

from __future__ import annotations

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

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


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
