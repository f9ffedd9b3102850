"""How many GetRole calls one person can make RoleDesk issue for the roles list's Last
activity column.

RoleLastUsed comes only from GetRole, one call per role. Without a bound, one request naming
100 roles (or a script asking again and again) makes RoleDesk call AWS on the requester's
behalf as fast as it asks, spending the account's IAM request quota (a viewer could throttle
everyone's changes). So: only roles the list knows are looked up, at most one page's worth per
request, answers are remembered (RoleInventory), and each user may start at most PER_USER fresh
lookups per WINDOW; past that the cells say the activity was not loaded. Counted in memory, per
worker process, under a lock (a bound on load, not an access control).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

PER_REQUEST = 100  # the largest roles-list page
PER_USER = 300  # fresh GetRole calls per user per window: three full pages a minute or so
WINDOW = 300.0  # seconds


class LookupBudget:
    def __init__(
        self,
        per_user: int = PER_USER,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_user = per_user
        self.window = window
        self._clock = clock
        self._spent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, user: str, wanted: int) -> int:
        """Reserve up to `wanted` lookups for `user`; returns how many may be made now."""
        now = self._clock()
        with self._lock:
            spent = self._spent.setdefault(user, deque())
            while spent and now - spent[0] >= self.window:
                spent.popleft()
            granted = max(0, min(wanted, self.per_user - len(spent)))
            spent.extend([now] * granted)
            return granted
