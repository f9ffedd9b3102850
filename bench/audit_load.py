"""Loading a generated ledger into PostgreSQL fast: COPY with the indexes built afterwards.

Loading 1,000,000 events into tables that already carry their indexes took 11 minutes on a
quiet machine and more than 45 under load: every row updates a dozen B-trees (three of them
on random UUIDs) and the trigram GIN index, one row at a time. Here the tables' indexes and
key constraints are dropped first (their definitions read back from the catalog, so whatever
the migrations made is rebuilt exactly), the rows are streamed with COPY on two connections
(ledger and derived index side by side, so the server parses one while Python hashes the
next rows), and the indexes are then built once each, sorted in bulk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from app.models import STATUS_PARTITIONS

TABLES = ("audit_events", "audit_event_status")
# The status table's partitions on PostgreSQL (STATUS_PARTITIONS): their keys and their copies
# of the parent's indexes are dropped and rebuilt too.
# Index builds sort in memory up to this; the machine has plenty, the default is 64 MB.
BUILD_MEMORY = "1GB"

_CONSTRAINTS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('p', 'u')
"""
_INDEXES = """
SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid),
       (SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = indexrelid)
FROM pg_index
WHERE indrelid = ANY(%s::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = indexrelid)
"""


def libpq_url(sqlalchemy_url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


def _drop_indexes(conn: psycopg.Connection[Any]) -> tuple[list[str], list[str]]:
    """Drop the tables' indexes and keys; return the statements that recreate them.

    A partition's copy of an index cannot be dropped on its own: dropping the parent's drops
    it. The parent's is rebuilt first (`ON ONLY` the parent, as the catalog gives it), then
    each partition's, attached to it."""
    tables = list(TABLES) + [t for t in STATUS_PARTITIONS if _exists(conn, t)]
    constraints = conn.execute(_CONSTRAINTS, [tables]).fetchall()
    indexes = conn.execute(_INDEXES, [tables]).fetchall()
    for name, _, parent in indexes:
        if parent is None:
            conn.execute(f"DROP INDEX {name}")
    for table, name, _ in constraints:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    keys = [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {d}' for table, name, d in constraints]
    parents = [definition for _, definition, parent in indexes if parent is None]
    copies = [definition for _, definition, parent in indexes if parent is not None]
    attach = [f"ALTER INDEX {p} ATTACH PARTITION {n}" for n, _, p in indexes if p is not None]
    return keys, [*parents, *copies, *attach]


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", [table]).fetchone() != (None,)


def load(
    url: str,
    batches: Iterable[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]],
    entry_columns: list[str],
    status_columns: list[str],
) -> None:
    """COPY every (ledger rows, index rows) batch into the empty tables, then index them."""
    dsn = libpq_url(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        keys, indexes = _drop_indexes(conn)
    with ExitStack() as stack:
        ledger = stack.enter_context(psycopg.connect(dsn))
        status = stack.enter_context(psycopg.connect(dsn))
        for conn in (ledger, status):
            conn.execute("SET synchronous_commit = off")
        entries = stack.enter_context(
            ledger.cursor().copy(f"COPY audit_events ({', '.join(entry_columns)}) FROM STDIN")
        )
        statuses = stack.enter_context(
            status.cursor().copy(
                f"COPY audit_event_status ({', '.join(status_columns)}) FROM STDIN"
            )
        )
        for entry_rows, status_rows in batches:
            for row in entry_rows:
                entries.write_row(row)
            for row in status_rows:
                statuses.write_row(row)
    # Leaving the ExitStack ended both COPYs and committed both connections.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SET maintenance_work_mem = '{BUILD_MEMORY}'")
        for statement in [*keys, *indexes]:
            conn.execute(statement)  # definitions read from the catalog above
        conn.execute("ANALYZE")


def chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
