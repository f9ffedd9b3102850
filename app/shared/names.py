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
    def held(self, name: str) -> Iterator[None]:
        """Held from the check of `name` (any spelling) until CreateRole answered."""
        if self._shared is None:
            with _LOCAL_LOCK:
                yield
            return
        with self._shared.lock(f"{INVENTORY}:{self._key}:{name.lower()}"):
            yield

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
