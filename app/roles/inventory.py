"""The roles list, held in memory so paging, sorting and search over thousands of roles answer
without calling AWS.

The first request loads every page of ListRoles once; later requests filter and sort the
in-memory rows. The list's age is shown with a refresh control, it reloads after
`ttl_seconds`, and every successful change RoleDesk makes to a role updates that role at once
(the audited path calls `on_change`).

With several processes (workers, replicas) the list is shared through the database
(app.shared.state, issue 16): a change re-reads the role once and stores it, and every other
process applies the notice from the stored row before it answers; a load or "Refresh list"
reads ListRoles in one process while the others wait and take its result; a new process
starts from the stored list while it is fresh.

ListRoles does not return RoleLastUsed, so it is fetched with GetRole for the rows on screen
only, a few at a time, and remembered for a while.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.aws.errors import AwsError, NotFound
from app.aws.iam import IamGateway
from app.aws.types import Role, RoleLastUsed, Tag
from app.roles.trust import summarise_trust
from app.shared.state import SharedState, Stored
from app.web.paging import paged

SORT_KEYS = ("name", "created")
LAST_USED_TTL = 600.0
# GetRole calls in flight at once for a page's last-activity column: a page of 25 roles is
# 4 rounds, well inside IAM's request rate.
LAST_USED_WORKERS = 8
INVENTORY = "roles"


def role_fields(role: Role) -> dict[str, Any]:
    """A role's fields as JSON values (what a row shows; last use is per process): the
    shared inventory's and the stored access review scan's (app.review.stored) form."""
    return {
        "name": role.name,
        "role_id": role.role_id,
        "arn": role.arn,
        "path": role.path,
        "created": role.created.isoformat(),
        "trust_policy": role.trust_policy,
        "description": role.description,
        "max_session_duration": role.max_session_duration,
        "permissions_boundary_arn": role.permissions_boundary_arn,
        "tags": [[t.key, t.value] for t in role.tags],
    }


def role_from_fields(raw: dict[str, Any], last_used: RoleLastUsed | None = None) -> Role:
    return Role(
        name=raw["name"],
        role_id=raw["role_id"],
        arn=raw["arn"],
        path=raw["path"],
        created=datetime.fromisoformat(raw["created"]),
        trust_policy=raw["trust_policy"],
        description=raw["description"],
        max_session_duration=raw["max_session_duration"],
        permissions_boundary_arn=raw["permissions_boundary_arn"],
        tags=tuple(Tag(k, v) for k, v in raw["tags"]),
        last_used=last_used,
    )


def role_to_json(role: Role) -> str:
    """A role as stored in the shared inventory."""
    return json.dumps(role_fields(role), separators=(",", ":"))


def role_from_json(data: str) -> Role:
    return role_from_fields(json.loads(data))


@dataclass(frozen=True)
class RoleRow:
    role: Role
    trusted: tuple[str, ...]
    # Sort keys computed once: comparing boto's tz-aware datetimes calls back into Python
    # (dateutil's utcoffset) on every comparison, which made sorting 5,000 roles ~20 ms.
    created_key: float
    name_key: str

    @classmethod
    def of(cls, role: Role) -> RoleRow:
        return cls(
            role, summarise_trust(role.trust_policy), role.created.timestamp(), role.name.lower()
        )

    @property
    def name(self) -> str:
        return self.role.name


@dataclass(frozen=True)
class RolePage:
    rows: list[RoleRow]
    total: int
    matching: int
    page: int
    pages: int
    per_page: int
    loaded_at: datetime


# Changes that leave what a row shows (GetRole: name, trust policy, description, tags,
# boundary, dates) as it was; re-reading the role after each of them (three times for a
# wizard run with three policies) was a wasted call.
LEAVE_ROLE_AS_IT_WAS = frozenset(
    {
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:AddRoleToInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
    }
)


def role_name_from_target(target: str | None) -> str | None:
    """`arn:aws:iam::123:role/path/name` -> `name`; other IAM targets -> None."""
    if not target or not target.startswith("arn:aws:iam::") or ":role/" not in target:
        return None
    return target.rsplit("/", 1)[-1]


class RoleInventory:
    def __init__(
        self,
        iam: IamGateway,
        *,
        ttl_seconds: float = 900,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedState | None = None,
        key: str = "",
    ) -> None:
        self._iam = iam
        self._ttl = ttl_seconds
        self._clock = clock
        self._rows: dict[str, RoleRow] | None = None
        self._loaded_at = datetime.now(UTC)
        self._loaded_clock = 0.0
        self._last_used: dict[str, tuple[RoleLastUsed | None, float]] = {}
        self._lock = threading.Lock()
        # Loads, RoleDesk's own changes and other processes' notices take turns, so a load
        # that began before a change never overwrites it.
        self._load_lock = threading.RLock()
        self._shared = shared
        self._key = key  # which account's roles (issue 17); one account today
        self._known_stored = False
        self._rereader: ThreadPoolExecutor | None = None
        self._rereads: list[Future[None]] = []
        if shared is not None:
            shared.subscribe(INVENTORY, self._on_notice)

    # Loading -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload every role (all pages of ListRoles): the "Refresh list" button. With other
        processes, one reads AWS at a time; a read that finished while this one waited its
        turn is taken instead of reading again."""
        asked = datetime.now(UTC)
        with self._load_lock:
            if self._shared is None:
                self._adopt(
                    {r.name.lower(): RoleRow.of(r) for r in self._iam.list_roles()}, asked, 0.0
                )
                return
            with self._shared.refresh_lock(INVENTORY, self._key):
                stored = self._shared.load(INVENTORY, self._key)
                if stored is None or stored.loaded_at < asked:
                    stored = self._read_and_store()
                self._adopt_stored(stored)

    def _read_and_store(self) -> Stored:
        """ListRoles, stored for every process (the caller holds the refresh lock)."""
        assert self._shared is not None
        since = self._shared.last_change_id()
        began = datetime.now(UTC)
        items = {r.name.lower(): role_to_json(r) for r in self._iam.list_roles()}
        self._shared.replace_items(INVENTORY, self._key, items, began, since)
        stored = self._shared.load(INVENTORY, self._key)
        assert stored is not None
        return stored

    def _adopt_stored(self, stored: Stored) -> None:
        rows = {name: RoleRow.of(role_from_json(data)) for name, data in stored.items.items()}
        self._adopt(rows, stored.loaded_at, stored.age())

    def _adopt(self, rows: dict[str, RoleRow], loaded_at: datetime, age: float) -> None:
        with self._lock:
            self._rows = rows
            self._loaded_at = loaded_at
            self._loaded_clock = self._clock() - age

    def _fresh(self) -> dict[str, RoleRow] | None:
        rows = self._rows
        if rows is not None and self._clock() - self._loaded_clock < self._ttl:
            return rows
        return None

    def _ensure_loaded(self) -> dict[str, RoleRow]:
        if self._rereads:
            self.settle()
        if self._shared is not None:
            self._shared.catch_up()
        rows = self._fresh()
        if rows is not None:
            return rows
        with self._load_lock:  # one load at a time; the others wait and reuse it
            rows = self._fresh()
            if rows is not None:
                return rows
            if self._shared is None:
                self.refresh()
            else:
                self._load_shared()
            rows = self._rows
        assert rows is not None
        return rows

    def _load_shared(self) -> None:
        """The stored list while it is fresh (a new process, or another one refreshed);
        otherwise ListRoles in one process while the others wait for it."""
        assert self._shared is not None
        stored = self._shared.load(INVENTORY, self._key)
        if stored is None or stored.age() >= self._ttl:
            with self._shared.refresh_lock(INVENTORY, self._key):
                stored = self._shared.load(INVENTORY, self._key)
                if stored is None or stored.age() >= self._ttl:
                    stored = self._read_and_store()
        self._adopt_stored(stored)

    @property
    def loaded_at(self) -> datetime:
        return self._loaded_at

    @property
    def in_memory(self) -> bool:
        """Whether the list is loaded and fresh here: a query answers without reading AWS
        (the cross-account search shows which accounts are still loading)."""
        return self._fresh() is not None

    # Queries -----------------------------------------------------------------------------

    def page(
        self,
        *,
        search: str = "",
        sort: str = "name",
        descending: bool = False,
        page: int = 1,
        per_page: int = 25,
    ) -> RolePage:
        rows = self._ensure_loaded()
        needle = search.strip().lower()
        found = [r for key, r in rows.items() if needle in key] if needle else list(rows.values())
        if sort == "created":
            found.sort(key=lambda r: (r.created_key, r.name_key), reverse=descending)
        else:
            found.sort(key=lambda r: r.name_key, reverse=descending)
        shown, page, pages = paged(found, page, per_page)
        return RolePage(
            rows=shown,
            total=len(rows),
            matching=len(found),
            page=page,
            pages=pages,
            per_page=per_page,
            loaded_at=self._loaded_at,
        )

    def find(self, name: str) -> RoleRow | None:
        """The role of this name, ignoring case (IAM role names are unique regardless of
        case), from the in-memory list."""
        return self._ensure_loaded().get(name.lower())

    def cached_last_used(self, names: list[str]) -> dict[str, RoleLastUsed | None]:
        """Last use already known (and fresh) for these roles; missing names are unknown."""
        now = self._clock()
        with self._lock:
            return {
                n: self._last_used[n][0]
                for n in names
                if n in self._last_used and now - self._last_used[n][1] < LAST_USED_TTL
            }

    def fetch_last_used(self, names: list[str]) -> dict[str, RoleLastUsed | None]:
        """GetRole for each name not already known, a few in parallel."""
        known = self.cached_last_used(names)
        missing = [n for n in names if n not in known]
        if missing:
            with ThreadPoolExecutor(max_workers=LAST_USED_WORKERS) as pool:
                for name, last_used in zip(
                    missing, pool.map(self._get_last_used, missing), strict=True
                ):
                    known[name] = last_used
        return known

    def _get_last_used(self, name: str) -> RoleLastUsed | None:
        try:
            last_used = self._iam.get_role(name).last_used
        except NotFound:
            last_used = None
        with self._lock:
            self._last_used[name] = (last_used, self._clock())
        return last_used

    # Changes -----------------------------------------------------------------------------

    def on_change(self, action: str, target: str | None) -> None:
        """After RoleDesk changed a role, show the change at once: re-read that one role (and
        store it, telling the other processes).

        The re-read runs on a thread of its own so that the change's next calls (a new
        role's attaches and instance profile) need not wait for it on real AWS; every read
        of the list waits for the re-reads started before it (`settle`), so a page
        never shows the role as it was before RoleDesk's own change."""
        name = role_name_from_target(target)
        if name is None or action in LEAVE_ROLE_AS_IT_WAS:
            return
        with self._lock:
            if self._rereader is None:
                self._rereader = ThreadPoolExecutor(1, thread_name_prefix="roles-reread")
            # One thread: re-reads of one role are applied in the order of its changes.
            self._rereads.append(self._rereader.submit(self._reread, name))

    def settle(self) -> None:
        """Wait for the re-reads of RoleDesk's own changes started so far (and so for their
        notices to the other processes). The operations engine calls it before a run ends."""
        with self._lock:
            started = list(self._rereads)
        for future in started:
            future.exception()  # waits; _reread handles its own errors
        with self._lock:
            self._rereads = [f for f in self._rereads if not f.done()]

    def _reread(self, name: str) -> None:
        if self._rows is None and not self._stored():
            return  # nothing loaded anywhere yet: the first load reads it
        try:
            role: Role | None = self._iam.get_role(name)
        except NotFound:
            role = None
        except AwsError:
            self.invalidate()
            return
        with self._load_lock:
            if self._shared is not None:
                data = role_to_json(role) if role is not None else None
                self._shared.put_item(INVENTORY, self._key, name.lower(), data)
            self._apply(name, role)

    def _stored(self) -> bool:
        """Whether a stored list exists to keep up to date (once one does, it stays)."""
        if self._shared is None:
            return False
        if not self._known_stored:
            self._known_stored = self._shared.loaded_at(INVENTORY, self._key) is not None
        return self._known_stored

    def _apply(self, name: str, role: Role | None) -> None:
        with self._lock:
            if self._rows is None:
                return
            rows = dict(self._rows)
            held = rows.pop(name.lower(), None)
            if role is not None:
                rows[name.lower()] = RoleRow.of(role)
            self._last_used.pop(held.name if held is not None else name, None)
            self._rows = rows

    def _on_notice(self, key: str, item: str | None) -> None:
        """Another process changed a role (from its stored row) or reloaded the list."""
        if key != self._key or self._shared is None:
            return
        with self._load_lock:
            if self._rows is None:
                return  # nothing held: the next read loads the stored list
            if item is None:
                stored = self._shared.load(INVENTORY, self._key)
                if stored is not None:
                    self._adopt_stored(stored)
                return
            data = self._shared.load_item(INVENTORY, self._key, item)
            role = role_from_json(data) if data is not None else None
            self._apply(role.name if role is not None else item, role)

    def invalidate(self) -> None:
        with self._lock:
            self._rows = None
