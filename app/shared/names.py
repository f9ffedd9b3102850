"""Case-insensitive role-name uniqueness across processes (issue 16).

IAM refuses a second role whose name differs only in case, but the sandbox (moto) does not,
and two processes checking `MW-EC2-A` and `mw-ec2-a` at the same instant each saw no clash
in their own copy of the roles list. The database is the arbiter:

- a lock keyed by the lower-cased name (a PostgreSQL advisory lock; on SQLite a lock row)
  is held from the name check until CreateRole has answered, so two creates of one name
  (any spelling) take turns, in any process or thread;
- a claim row (`shared_items`, inventory `role_names`, item the lower-cased name, data the
  spelling created) is written under the lock once CreateRole succeeded, so the next holder
  finds the spelling even before its roles list shows it. A claim is confirmed with GetRole
  before it refuses a name, so a role deleted since does not block its name.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, insert, select, update

from app.shared.models import SharedItem
from app.shared.state import SharedState

INVENTORY = "role_names"

# Without a database (one process, tests): the same turns and claims in memory.
_LOCAL_LOCK = threading.Lock()
_LOCAL_CLAIMS: dict[tuple[str, str], str] = {}


class NameClaims:
    """The role names of one account (`key`), claimed across processes."""

    def __init__(self, shared: SharedState | None, key: str = "") -> None:
        self._shared = shared
        self._key = key

    @contextmanager
    def held(self, name: str) -> Iterator[Held]:
        """Held from the check of `name` (any spelling) until CreateRole answered. What is
        claimed under the name when the lock is taken is read in the same transaction
        (`Held.claimed`), and a claim made with `Held.claim` is written in the transaction
        that lets the lock go: on SQLite two transactions for the whole create, not four."""
        found = Held(self._key, name)
        if self._shared is None:
            with _LOCAL_LOCK:
                found.claimed = _LOCAL_CLAIMS.get((self._key, name.lower()))
                try:
                    yield found
                finally:
                    if found.spelling is not None:
                        _LOCAL_CLAIMS[(self._key, name.lower())] = found.spelling
            return
        with self._shared.lock(
            f"{INVENTORY}:{self._key}:{name.lower()}",
            taking=found.read,
            releasing=found.write,
        ):
            yield found

    def claimed(self, name: str) -> str | None:
        """The spelling RoleDesk last created under this name's lower-cased form, if any."""
        if self._shared is None:
            return _LOCAL_CLAIMS.get((self._key, name.lower()))
        return self._shared.load_item(INVENTORY, self._key, name.lower())

    def claim(self, name: str) -> None:
        """`name` was created: the next check of any spelling of it finds it here."""
        if self._shared is None:
            _LOCAL_CLAIMS[(self._key, name.lower())] = name
            return
        self._shared.keep_item(INVENTORY, self._key, name.lower(), name)


class Held:
    """A name's lock, held (NameClaims.held): what was claimed under it when taken, and the
    spelling to claim when it is let go."""

    def __init__(self, key: str, name: str) -> None:
        self._key = key
        self._item = name.lower()
        self.claimed: str | None = None
        self.spelling: str | None = None

    def claim(self, name: str) -> None:
        """`name` was created: claimed when the lock is let go (a failure to write it is
        logged; the roles list still names the role for the next check)."""
        self.spelling = name

    def read(self, conn: Connection) -> None:
        self.claimed = conn.scalar(
            select(SharedItem.data).where(
                SharedItem.inventory == INVENTORY,
                SharedItem.key == self._key,
                SharedItem.item == self._item,
            )
        )

    def write(self, conn: Connection) -> None:
        if self.spelling is None:
            return
        where = (
            SharedItem.inventory == INVENTORY,
            SharedItem.key == self._key,
            SharedItem.item == self._item,
        )
        if conn.execute(update(SharedItem).where(*where).values(data=self.spelling)).rowcount:
            return
        conn.execute(
            insert(SharedItem).values(
                inventory=INVENTORY, key=self._key, item=self._item, data=self.spelling
            )
        )
