"""The roles list, held in memory so paging, sorting and search over thousands of roles answer
without calling AWS.

The first request loads every page of ListRoles once; later requests filter and sort the
in-memory rows. The list's age is shown with a refresh control, it reloads after
`ttl_seconds`, and every successful change RoleDesk makes to a role updates that role at once
(the audited path calls `on_change`).

ListRoles does not return RoleLastUsed, so it is fetched with GetRole for the rows on screen
only, a few at a time, and remembered for a while.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from app.aws.errors import AwsError, NotFound
from app.aws.iam import IamGateway
from app.aws.types import Role, RoleLastUsed
from app.roles.trust import summarise_trust
from app.web.paging import paged

SORT_KEYS = ("name", "created")
LAST_USED_TTL = 600.0


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
    ) -> None:
        self._iam = iam
        self._ttl = ttl_seconds
        self._clock = clock
        self._rows: dict[str, RoleRow] | None = None
        self._loaded_at = datetime.now(UTC)
        self._loaded_clock = 0.0
        self._last_used: dict[str, tuple[RoleLastUsed | None, float]] = {}
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._rereader: ThreadPoolExecutor | None = None
        self._rereads: list[Future[None]] = []

    # Loading -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload every role (all pages of ListRoles)."""
        rows = {r.name.lower(): RoleRow.of(r) for r in self._iam.list_roles()}
        with self._lock:
            self._rows = rows
            self._loaded_at = datetime.now(UTC)
            self._loaded_clock = self._clock()

    def _ensure_loaded(self) -> dict[str, RoleRow]:
        if self._rereads:
            self._settle_rereads()
        rows = self._rows
        if rows is not None and self._clock() - self._loaded_clock < self._ttl:
            return rows
        with self._load_lock:  # one load at a time; the others wait and reuse it
            rows = self._rows
            if rows is None or self._clock() - self._loaded_clock >= self._ttl:
                self.refresh()
                rows = self._rows
        assert rows is not None
        return rows

    @property
    def loaded_at(self) -> datetime:
        return self._loaded_at

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
            with ThreadPoolExecutor(max_workers=8) as pool:
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
        """After RoleDesk changed a role, show the change at once: re-read that one role.

        The re-read runs on a thread of its own so that the change's next calls (a new
        role's attaches and instance profile) need not wait for it on real AWS; every read
        of the list waits for the re-reads started before it (`_settle_rereads`), so a page
        never shows the role as it was before RoleDesk's own change."""
        name = role_name_from_target(target)
        if name is None or self._rows is None or action in LEAVE_ROLE_AS_IT_WAS:
            return
        with self._lock:
            if self._rereader is None:
                self._rereader = ThreadPoolExecutor(1, thread_name_prefix="roles-reread")
            # One thread: re-reads of one role are applied in the order of its changes.
            self._rereads.append(self._rereader.submit(self._reread, name))

    def _settle_rereads(self) -> None:
        with self._lock:
            started = list(self._rereads)
        for future in started:
            future.exception()  # waits; _reread handles its own errors
        with self._lock:
            self._rereads = [f for f in self._rereads if not f.done()]

    def _reread(self, name: str) -> None:
        if not self.loaded:  # invalidated since the change: the next load reads the role
            return
        try:
            role: Role | None = self._iam.get_role(name)
        except NotFound:
            role = None
        except AwsError:
            self.invalidate()
            return
        with self._lock:
            current = self._rows
            if current is None:  # invalidated meanwhile: the next load reads it anyway
                return
            rows = dict(current)
            if role is None:
                rows.pop(name.lower(), None)
                self._last_used.pop(name, None)
            else:
                rows[name.lower()] = RoleRow.of(role)
            self._rows = rows

    @property
    def loaded(self) -> bool:
        return self._rows is not None

    def invalidate(self) -> None:
        with self._lock:
            self._rows = None
