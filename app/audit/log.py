"""Appending to the audit ledger: one chain, one writer at a time.

The chain head is read and extended inside one transaction that holds a lock: PostgreSQL's
transaction-scoped advisory lock, or SQLite's `BEGIN IMMEDIATE` write lock. So several server
processes writing at once still produce one unbroken chain.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from app.audit import pg_append
from app.audit.chain import GENESIS_HASH, entry_hash
from app.audit.group_commit import GroupCommit
from app.audit.search import fill_sql
from app.audit.status_rows import FROM_EVENT, FROM_OUTCOME, event_status, outcome_status
from app.db import Database
from app.models import AuditEvent, AuditEventStatus

# A kept connection unused for this long is pinged before the next append.
_PING_AFTER_IDLE = 30.0
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
        self._group: GroupCommit[list[NewEntry], list[dict[str, Any]]] = GroupCommit(
            self._append_groups
        )
        # PostgreSQL: the chain head this process last wrote or read (see app.audit.pg_append).
        self._head: tuple[int, str] | None = None
        self._writer_conn: Connection | None = None
        self._writer_used = 0.0
        db.on_dispose(self._drop_writer)

    def append(self, new: NewEntry) -> AuditEvent:
        """Append one entry and return it once committed.

        Entries appended at the same moment by other threads of this process may share the
        transaction (group commit, app.audit.group_commit); each is durable on return.
        """
        return AuditEvent(**self._group.submit([new])[0])

    def append_all(self, entries: list[NewEntry]) -> None:
        """Append entries together, in order, in one transaction; return once committed
        (other threads' entries may share the transaction, as in `append`). Nothing is
        returned: building ORM objects of the rows was a fifth of an audited call's commit,
        and the audited path never read them (issue 13)."""
        self._group.submit(entries)

    def _append_groups(self, groups: list[list[NewEntry]]) -> list[list[dict[str, Any]]]:
        """One transaction for every waiting group; each group stays contiguous."""
        written = iter(self.append_many([entry for group in groups for entry in group]))
        return [[next(written) for _ in group] for group in groups]

    def append_many(self, entries: list[NewEntry]) -> list[dict[str, Any]]:
        """Append entries in one committed transaction, under the chain lock.

        Core statements on a plain connection rather than the ORM unit of work: the same
        SQL, about twice the appends per second (see docs/performance.md, issue 5). On
        PostgreSQL, one statement when this process knows the head (app.audit.pg_append).
        Returns the rows written (as `AuditEvent` column values).
        """
        if self._head is not None and not self._db.is_sqlite:
            rows = _chain_rows(*self._head, entries)
            if pg_append.can_batch(rows) and self._one_statement(rows):
                return rows
        options = {"sqlite_immediate": True} if self._db.is_sqlite else {}
        # BEGIN IMMEDIATE on SQLite takes the write lock up front (see app.db).
        with self._db.engine.connect().execution_options(**options) as conn, conn.begin():
            rows = self._extend_chain(conn, entries)
        if not self._db.is_sqlite:
            self._head = (rows[-1]["seq"], rows[-1]["hash"])
        return rows

    def _one_statement(self, rows: list[dict[str, Any]]) -> bool:
        """True once committed; False if another process extended the chain meanwhile
        (nothing was written). Other errors propagate: the outcome is then not known."""
        try:
            pg_append.insert_in_one_statement(self._writer(), rows, _PG_CHAIN_LOCK)
        except IntegrityError:
            self._head = None
            return False
        except Exception:
            self._drop_writer()  # a broken connection is not reused
            raise
        self._head = (rows[-1]["seq"], rows[-1]["hash"])
        self._writer_used = time.monotonic()
        return True

    def _writer(self) -> Connection:
        """This process's autocommit connection for one-statement appends.

        Kept open, so an append is one round trip: a pooled connection costs a checkout and
        the pool's pre-ping (another round trip) every time. Only calls from the group
        commit's leader reach here, one at a time. After a quiet spell it is pinged first,
        so a server restart costs one reconnect, not a failed append."""
        conn = self._writer_conn
        if conn is not None and time.monotonic() - self._writer_used > _PING_AFTER_IDLE:
            try:
                conn.exec_driver_sql("SELECT 1")
            except Exception:
                self._drop_writer()
                conn = None
        if conn is None:
            conn = self._db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._writer_conn = conn
        return conn

    def _drop_writer(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to release
                conn.close()

    def _extend_chain(self, conn: Connection, entries: list[NewEntry]) -> list[dict[str, Any]]:
        if not self._db.is_sqlite:
            conn.execute(_PG_LOCK, {"k": _PG_CHAIN_LOCK})
        head = conn.execute(_HEAD).first()
        rows = _chain_rows(*((head[0], head[1]) if head else (0, GENESIS_HASH)), entries)
        conn.execute(insert(AuditEvent), rows)
        _track_outcomes(conn, rows)
        return rows


def _chain_rows(seq: int, prev: str, entries: list[NewEntry]) -> list[dict[str, Any]]:
    """The entries as rows after (seq, prev): numbered, timed and hashed."""
    rows: list[dict[str, Any]] = []
    for new in entries:
        seq += 1
        values: dict[str, Any] = {
            **new.__dict__,
            "params": redact(new.params),
            "seq": seq,
            "recorded_at": datetime.now(UTC),
        }
        values["prev_hash"] = prev
        values["hash"] = prev = entry_hash(prev, values)
        rows.append(values)
    return rows


_PG_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_HEAD = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)


_STATUS_INSERT = insert(AuditEventStatus)
# Bound as b_<column>: an UPDATE's parameters may not share its columns' names.
_STATUS_UPDATE = (
    update(AuditEventStatus)
    .where(AuditEventStatus.event_id == bindparam("b_event_id"))
    .values(
        outcome=bindparam("b_outcome"),
        outcome_seq=bindparam("b_outcome_seq"),
        **{column: bindparam(f"b_{column}") for column in FROM_OUTCOME},
        search=func.coalesce(AuditEventStatus.search, "").concat(bindparam("b_search")),
    )
)


def _track_outcomes(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Keep the derived `audit_event_status` index in step, in the same transaction: one
    statement for the new intents and records, one for the outcomes (each executed for all
    its rows at once). An outcome's intent is always in an earlier transaction or earlier in
    this one, so the inserts go first."""
    inserts = [event_status(row) for row in rows if row["kind"] != "outcome"]
    updates = [
        {"b_event_id": row["event_id"]} | {f"b_{k}": v for k, v in outcome_status(row).items()}
        for row in rows
        if row["kind"] == "outcome"
    ]
    if inserts:
        conn.execute(_STATUS_INSERT, inserts)
    if updates:
        conn.execute(_STATUS_UPDATE, updates)


_EVENT_COPIED = ", ".join(f"e.{column}" for column in FROM_EVENT)
_OUTCOME_COPIED = ", ".join(f"o.{source}" for source in FROM_OUTCOME.values())
REBUILD_STATUS_SQL = f"""
INSERT INTO audit_event_status
    (seq, outcome, outcome_seq, {", ".join(FROM_EVENT)}, {", ".join(FROM_OUTCOME)})
SELECT e.seq,
       COALESCE(o.outcome, CASE WHEN e.kind = 'intent' THEN 'pending' ELSE e.outcome END),
       o.seq, {_EVENT_COPIED}, {_OUTCOME_COPIED}
FROM audit_events e
LEFT JOIN audit_events o ON o.seq = (
    SELECT MAX(x.seq) FROM audit_events x WHERE x.event_id = e.event_id AND x.kind = 'outcome'
)
WHERE e.kind IN ('intent', 'record')
"""  # noqa: S608 (constant column names only)


def rebuild_status_index(db: Database) -> int:
    """Refill `audit_event_status` from the ledger (it is derived; the ledger is the record)."""
    options = {"sqlite_immediate": True} if db.is_sqlite else {}
    with db.sessions() as session:
        session.connection(execution_options=options)  # the writers' lock, as in append
        if not db.is_sqlite:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
        session.execute(delete(AuditEventStatus))
        session.execute(text(REBUILD_STATUS_SQL))
        for statement in fill_sql(db.engine.dialect.name):
            session.execute(text(statement))
        count = int(session.scalar(select(func.count()).select_from(AuditEventStatus)) or 0)
        session.commit()
    return count
