"""What every RoleDesk process of one installation shares through its database (issue 16).

Each process keeps its inventories (the roles list, ...) in memory for speed; this module
keeps them true across processes:

- The change log (`shared_changes`): a process that changes an inventory item (a role it just
  created) writes the item's new state to the stored inventory and a change notice, in one
  transaction. Every other process applies the notices it has not seen yet (`catch_up`): it
  reads the item's stored row, not AWS. Reads of an inventory catch up first (one indexed
  query), so a page served by any process shows every change committed before it was asked.
  On PostgreSQL a listener thread also wakes on `NOTIFY` and catches up at once, so an idle
  process applies a reload in the background instead of in the next request.
- Stored inventories (`shared_inventories`, `shared_items`): the last full read from AWS,
  kept up to date by the notices' writes, so a new process starts warm and a "Refresh list"
  on one process is read by the others from the database.
- Refresh locks: only one process reads an inventory from AWS at a time (PostgreSQL's
  advisory lock; on SQLite a lock row with a lease); the others wait, then take its result.

An inventory is named and keyed (`("roles", "")`; issue 17 keys them by account), so every
inventory uses the same three operations: `load`, `put_item`, `replace_items`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.db import Database
from app.shared.models import SharedChange, SharedInventory, SharedItem, SharedLock

log = logging.getLogger("roledesk.shared")

CHANNEL = "roledesk_shared"
# PostgreSQL advisory locks of this module use the two-int4 form with this first key, a
# space apart from the single-bigint keys of the audit chain and the sign-in throttle.
_LOCK_SPACE = 160016
_LOG_LOCK = 0  # serialises change-log writes, so ids commit in id order
# A refresh lease on SQLite: long enough for any ListRoles paging, short enough that a
# process killed mid-refresh holds the others up for this long at most.
LEASE = timedelta(seconds=300)
# Notices older than this are pruned; longer than any cache lifetime, so a process that
# missed a pruned notice has an expired copy anyway and reloads it.
KEEP_CHANGES = timedelta(days=1)
SQLITE_LOCK_POLL = 0.05
_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)  # an expired stored inventory's read time

# (key, item): `item` of the inventory keyed `key` changed, or None: the whole inventory
# was reloaded.
Handler = Callable[[str, str | None], None]


class RequestScope:
    """One request's record of the processes' views that caught up during it."""

    def __init__(self) -> None:
        self.caught_up: set[str] = set()  # SharedState origins
        self.open = True


# A page reads several inventories (the EC2 page: the roles list, the instances, the
# profiles), and each catches up before it answers; within one request the first catch-up
# covers the others (notices committed later are for the next request).
_REQUEST: ContextVar[RequestScope | None] = ContextVar("roledesk_shared_request", default=None)


@contextmanager
def request_scope() -> Iterator[RequestScope]:
    """While one request is answered: `SharedState.catch_up` queries the change log once.
    Closed when the request ends, so a thread that copied the request's context (and outlives
    it) catches up every time again."""
    scope = RequestScope()
    token = _REQUEST.set(scope)
    try:
        yield scope
    finally:
        scope.open = False
        _REQUEST.reset(token)


def utc(moment: datetime) -> datetime:
    """SQLite hands timezone-aware columns back naive; they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _lock_key(name: str) -> int:
    """A stable signed 32-bit key for one lock name (the second key of the two-int4 form)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), signed=True)


@dataclass(frozen=True)
class Stored:
    """A stored inventory: its items (JSON text by item name) and when AWS was read."""

    loaded_at: datetime
    items: dict[str, str]

    def age(self) -> float:
        return (datetime.now(UTC) - self.loaded_at).total_seconds()


class SharedState:
    """One process's view of the shared state; see the module docstring."""

    def __init__(self, db: Database, *, listen: bool = True) -> None:
        self.db = db
        self.origin = str(uuid.uuid4())
        self._handlers: dict[str, list[Handler]] = {}
        # An item's new state, inserted or replaced (both databases have ON CONFLICT).
        new_item = (sqlite.insert if db.is_sqlite else postgresql.insert)(SharedItem)
        self._upsert_items = new_item.on_conflict_do_update(
            index_elements=[SharedItem.inventory, SharedItem.key, SharedItem.item],
            set_={"data": new_item.excluded.data},
        )
        self._catch_lock = threading.Lock()
        self._seen = self.last_change_id()
        self.change_log_reads = 0  # catch-ups that queried the change log (tests count them)
        self._listener: NoticeListener | None = None
        if listen and not db.is_sqlite:
            self._listener = NoticeListener(db.url, self.catch_up)
            self._listener.start()
            db.on_dispose(self._listener.stop)

    # Notices -----------------------------------------------------------------------------

    def subscribe(self, inventory: str, handler: Handler) -> None:
        """Call `handler` for every notice about `inventory` from another process."""
        self._handlers.setdefault(inventory, []).append(handler)

    def last_change_id(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.max(SharedChange.id))) or 0)

    def catch_up(self) -> None:
        """Apply the notices other processes wrote since the last catch-up, in order (once
        per request, `request_scope`)."""
        scope = _REQUEST.get()
        if scope is not None and scope.open:
            if self.origin in scope.caught_up:
                return
            scope.caught_up.add(self.origin)
        with self._catch_lock:
            self.change_log_reads += 1
            with self.db.session() as session:
                rows = session.execute(
                    select(
                        SharedChange.id,
                        SharedChange.inventory,
                        SharedChange.key,
                        SharedChange.item,
                        SharedChange.origin,
                    )
                    .where(SharedChange.id > self._seen)
                    .order_by(SharedChange.id)
                ).all()
            if not rows:
                return
            self._seen = rows[-1].id
            # Per inventory and key, the items to re-read; a reload makes earlier ones moot.
            pending: dict[tuple[str, str], list[str | None]] = {}
            for row in rows:
                if row.origin == self.origin:  # applied already, when it was made
                    continue
                items = pending.setdefault((row.inventory, row.key), [])
                if row.item is None:
                    items[:] = [None]
                elif row.item not in items:
                    items.append(row.item)
            for (inventory, key), items in pending.items():
                for handler in self._handlers.get(inventory, []):
                    for item in items:
                        try:
                            handler(key, item)
                        except Exception:  # one bad notice must not stop the others
                            log.exception("applying a %s notice (%s) failed", inventory, item)

    def _begin_change(self, session: Session) -> None:
        """Take the change-log lock: on PostgreSQL ids come from a sequence when a row is
        inserted, not when it commits; one writer at a time keeps "after id N" complete.
        (SQLite's write transaction already admits one writer.)"""
        if not self.db.is_sqlite:
            session.execute(
                text("SELECT pg_advisory_xact_lock(:space, :key)"),
                {"space": _LOCK_SPACE, "key": _LOG_LOCK},
            )

    def _notice(self, session: Session, inventory: str, key: str, *items: str | None) -> None:
        """Tell every process that these items (None: everything) changed: one row each,
        one statement, and on PostgreSQL one wake-up at commit."""
        now = datetime.now(UTC)
        session.execute(
            insert(SharedChange),
            [
                {
                    "inventory": inventory,
                    "key": key,
                    "item": item,
                    "origin": self.origin,
                    "recorded_at": now,
                }
                for item in items
            ],
        )
        if not self.db.is_sqlite:  # delivered at commit, with the rows
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})

    def publish(self, inventory: str, key: str, item: str | None = None) -> None:
        """A notice alone, for an inventory that is not stored: `item` changed (or, None,
        everything), read it again."""
        with self.db.write_session() as session:
            self._begin_change(session)
            self._notice(session, inventory, key, item)

    # Stored inventories ------------------------------------------------------------------

    def load(self, inventory: str, key: str) -> Stored | None:
        """The stored inventory, or None when none was stored yet."""
        with self.db.session() as session:
            found = session.get(SharedInventory, (inventory, key))
            if found is None:
                return None
            rows = session.execute(
                select(SharedItem.item, SharedItem.data).where(
                    SharedItem.inventory == inventory, SharedItem.key == key
                )
            ).all()
            return Stored(utc(found.loaded_at), {row.item: row.data for row in rows})

    def loaded_at(self, inventory: str, key: str) -> datetime | None:
        """When the stored inventory was read from AWS; None when it never was."""
        with self.db.session() as session:
            found = session.get(SharedInventory, (inventory, key))
            return utc(found.loaded_at) if found is not None else None

    def load_item(self, inventory: str, key: str, item: str) -> str | None:
        with self.db.session() as session:
            found = session.get(SharedItem, (inventory, key, item))
            return found.data if found is not None else None

    def load_items(self, inventory: str, key: str, items: Iterable[str]) -> dict[str, str]:
        """The stored state of each of `items` that is stored (one query)."""
        wanted = list(items)
        if not wanted:
            return {}
        with self.db.session() as session:
            rows = session.execute(
                select(SharedItem.item, SharedItem.data).where(
                    SharedItem.inventory == inventory,
                    SharedItem.key == key,
                    SharedItem.item.in_(wanted),
                )
            ).all()
            return {row.item: row.data for row in rows}

    def put_item(self, inventory: str, key: str, item: str, data: str | None) -> None:
        """Store one item's new state (None: it is gone) and tell every process."""
        self.put_items(inventory, key, {item: data})

    def put_items(self, inventory: str, key: str, items: Mapping[str, str | None]) -> None:
        """Store several items' new states (None: gone) and tell every process, in one
        transaction: a bulk change's read-back of 50 instances is one commit, not 50 (on
        SQLite each would queue behind, and hold up, the audit ledger's commits).

        The items' rows are made before the write transaction and written with three Core
        statements (an upsert, a delete, the notices): on SQLite the write lock is held only
        for them, not for an ORM read and flush per item (measured holding it 4-11 ms while
        a create's next AWS call waited for the ledger's commit behind it)."""
        if not items:
            return
        kept = [
            {"inventory": inventory, "key": key, "item": item, "data": data}
            for item, data in items.items()
            if data is not None
        ]
        gone = [item for item, data in items.items() if data is None]
        with self.db.write_session() as session:
            self._begin_change(session)
            if kept:
                session.execute(self._upsert_items, kept)
            if gone:
                session.execute(
                    delete(SharedItem).where(
                        SharedItem.inventory == inventory,
                        SharedItem.key == key,
                        SharedItem.item.in_(gone),
                    )
                )
            self._notice(session, inventory, key, *items)

    def replace_items(
        self,
        inventory: str,
        key: str,
        items: Mapping[str, str],
        loaded_at: datetime,
        since: int,
    ) -> None:
        """Store a full read of the inventory (begun when the change log was at `since`) and
        tell every process to reload it. Items changed since then keep their stored state:
        the read may predate that change."""
        with self.db.write_session() as session:
            self._begin_change(session)
            newer = _changed_since(session, inventory, key, since)
            session.execute(
                delete(SharedItem).where(
                    SharedItem.inventory == inventory,
                    SharedItem.key == key,
                    SharedItem.item.not_in(newer),
                )
            )
            fresh = [
                {"inventory": inventory, "key": key, "item": name, "data": data}
                for name, data in items.items()
                if name not in newer
            ]
            if fresh:
                session.execute(insert(SharedItem), fresh)
            stored = session.get(SharedInventory, (inventory, key))
            if stored is None:
                session.add(SharedInventory(inventory=inventory, key=key, loaded_at=loaded_at))
            else:
                stored.loaded_at = loaded_at
            session.execute(
                delete(SharedChange).where(
                    SharedChange.recorded_at < datetime.now(UTC) - KEEP_CHANGES
                )
            )
            self._notice(session, inventory, key, None)

    def changed_since(self, inventory: str, key: str, since: int) -> set[str]:
        """The items of the inventory with a notice after change `since` (from any process):
        a full read begun at `since` may predate them, so `replace_items` kept their rows."""
        with self.db.session() as session:
            return _changed_since(session, inventory, key, since)

    def expire(self, inventory: str, key: str) -> None:
        """The stored inventory may be wrong: mark it out of date and tell every process, so
        the next read of it reads AWS (once, under the refresh lock)."""
        with self.db.write_session() as session:
            self._begin_change(session)
            stored = session.get(SharedInventory, (inventory, key))
            if stored is not None:
                stored.loaded_at = _LONG_AGO
            self._notice(session, inventory, key, None)

    def keep_item(self, inventory: str, key: str, item: str, data: str) -> None:
        """Store one item with no notice: for rows every process reads from the database
        when it needs them, never from memory (the role-name claims, app.shared.names)."""
        row = {"inventory": inventory, "key": key, "item": item, "data": data}
        with self.db.write_session() as session:
            session.execute(self._upsert_items, [row])

    @contextmanager
    def refresh_lock(self, inventory: str, key: str) -> Iterator[None]:
        """Held while one process reads the inventory from AWS; others wait here."""
        with self.lock(f"{inventory}:{key}"):
            yield

    @contextmanager
    def lock(
        self,
        name: str,
        *,
        taking: Callable[[Connection], None] | None = None,
        releasing: Callable[[Connection], None] | None = None,
    ) -> Iterator[None]:
        """One holder at a time across every process and thread: a PostgreSQL advisory lock
        (on a connection of its own), on SQLite a lock row with a lease.

        `taking` (a read once the lock is held) and `releasing` (a write before it is let
        go, whether or not the holder's block raised) run in a transaction holding the lock:
        on SQLite the same transactions that take and release it, so a holder that reads and
        writes under the lock pays two transactions, not four (issue 13). An error in
        `taking` means the lock was not taken and propagates. A database error in
        `releasing` is logged, not raised (the lock is then let go on its own, as before):
        the holder's work is done by then, and what it writes there is a hint for others."""
        if self.db.is_sqlite:
            with self._sqlite_lock(name, taking, releasing):
                yield
            return
        with self.db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            params = {"space": _LOCK_SPACE, "key": _lock_key(name)}
            conn.execute(text("SELECT pg_advisory_lock(:space, :key)"), params)
            try:
                if taking is not None:
                    with self.db.engine.begin() as found:
                        taking(found)
                yield
            finally:
                if releasing is not None:
                    try:
                        with self.db.engine.begin() as last:
                            releasing(last)
                    except SQLAlchemyError as exc:
                        log.warning("lock %s: its last write failed (%s)", name, exc)
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:space, :key)"), params)
                except SQLAlchemyError as exc:  # the server let it go with the connection
                    log.warning("lock %s: connection lost before unlocking (%s)", name, exc)

    @contextmanager
    def _sqlite_lock(
        self,
        name: str,
        taking: Callable[[Connection], None] | None = None,
        releasing: Callable[[Connection], None] | None = None,
    ) -> Iterator[None]:
        # Core statements on one connection: the ORM's unit of work cost more than the SQL
        # (a third of a create run's own time went to this lock, issue 13).
        holder = str(uuid.uuid4())
        while True:
            with self._sqlite_write() as conn:
                now = datetime.now(UTC)
                found = conn.execute(_LOCK_OF, {"name": name}).first()
                took = found is None or utc(found.expires_at) < now  # free, or its holder died
                if found is None:
                    conn.execute(
                        insert(SharedLock),
                        {"name": name, "holder": holder, "expires_at": now + LEASE},
                    )
                elif took:
                    conn.execute(
                        update(SharedLock)
                        .where(SharedLock.name == name)
                        .values(holder=holder, expires_at=now + LEASE)
                    )
                if took:
                    if taking is not None:
                        taking(conn)  # an error rolls the lock back: not taken
                    break
            time.sleep(SQLITE_LOCK_POLL)
        try:
            yield
        finally:
            try:
                with self._sqlite_write() as conn:
                    if releasing is not None:
                        releasing(conn)
                    self._release(conn, name, holder)
            except SQLAlchemyError as exc:
                log.warning("lock %s: not released with its last write (%s)", name, exc)
                try:  # the lock at least, without what was to be written with it
                    with self._sqlite_write() as conn:
                        self._release(conn, name, holder)
                except SQLAlchemyError as again:  # the lease ends it
                    log.warning("lock %s: not released (%s); its lease ends it", name, again)

    @contextmanager
    def _sqlite_write(self) -> Iterator[Connection]:
        """A write transaction on SQLite (BEGIN IMMEDIATE), committed on exit."""
        with self.db.engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    @staticmethod
    def _release(conn: Connection, name: str, holder: str) -> None:
        conn.execute(delete(SharedLock).where(SharedLock.name == name, SharedLock.holder == holder))


_LOCK_OF = select(SharedLock.holder, SharedLock.expires_at).where(
    SharedLock.name == bindparam("name")
)


class NoticeListener(threading.Thread):
    """PostgreSQL only: a connection that LISTENs and calls `on_notice` whenever a notice
    arrives, and once after each (re)connection for what was missed while it was away."""

    def __init__(self, database_url: str, on_notice: Callable[[], None]) -> None:
        super().__init__(name="roledesk-notices", daemon=True)
        from sqlalchemy.engine import make_url

        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._on_notice = on_notice
        self._stopping = threading.Event()
        self.connected = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)

    def run(self) -> None:
        import psycopg

        backoff = 0.5
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    backoff = 0.5
                    self._apply()
                    while not self._stopping.is_set():
                        if any(True for _ in conn.notifies(timeout=0.5, stop_after=1)):
                            self._apply()
            except psycopg.Error as exc:
                self.connected.clear()
                log.warning("change notices: connection lost (%s); reconnecting", exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _apply(self) -> None:
        try:
            self._on_notice()
        except Exception:  # the next notice (or request) catches up again
            log.exception("catching up with change notices failed")


def _changed_since(session: Session, inventory: str, key: str, since: int) -> set[str]:
    """The items of the inventory with a notice after change `since`."""
    return {
        name
        for name in session.scalars(
            select(SharedChange.item).where(
                SharedChange.inventory == inventory,
                SharedChange.key == key,
                SharedChange.id > since,
                SharedChange.item.is_not(None),
            )
        )
        if name is not None
    }
