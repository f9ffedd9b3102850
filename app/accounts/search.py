"""The roles of every account, searched at once (issue 17).

Each account's roles list is the one its own roles page uses (app.roles.inventory, in
memory once loaded), so a warm search filters memory only. Lists not loaded yet are read in
the background (AccountLoads), side by side, at most SEARCH_WORKERS (20) accounts at a time:
the wait is about the slowest account's ListRoles pagination, not their sum. A request waits
for them a bounded time; if they are not all read by then, the page shows which accounts
are loaded, loading or unavailable, and asks again (htmx; without JavaScript a "Check
progress" link, whose request waits longer). An account that cannot be reached is reported
with AWS's error; the others are searched.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from app.accounts.context import AccountServices, AccountUnavailable
from app.accounts.model import Account
from app.accounts.urls import prefix_of
from app.aws.errors import AwsError
from app.roles.inventory import RoleRow
from app.web.paging import paged

# Accounts read side by side: on AWS each read waits on the network, so 20 accounts load in
# about the time of the slowest; bounded below the clients' connection pool (32).
SEARCH_WORKERS = 20
PER_PAGE = 50
# How long a request waits for the lists still loading before it answers with their
# progress: a page (or a search) a moment, so progress shows early; htmx's next ask until
# one more account is done; the no-JavaScript "Check progress" link longer, so a person
# without JavaScript clicks it rarely (no meta refresh: it moves focus and breaks the
# back button).
FIRST_WAIT = 1.0
HTMX_WAIT = 2.0
CHECK_WAIT = 8.0


@dataclass(frozen=True)
class Found:
    account: Account
    row: RoleRow

    @property
    def base(self) -> str:
        """The prefix of the role's page (app.accounts.urls): empty for the hub."""
        return prefix_of(None if self.account.is_hub else self.account.account_id)


@dataclass(frozen=True)
class Unreached:
    account: Account
    error: AwsError


@dataclass(frozen=True)
class SearchResult:
    rows: list[Found]
    matching: int
    total: int
    page: int
    pages: int
    unreached: list[Unreached]
    searched: int  # accounts searched


def _one(
    accounts: AccountServices, account: Account, user: str, needle: str
) -> tuple[list[Found], int, Unreached | None]:
    try:
        services = accounts.for_account(account.account_id, user)
        listed = services.inventory.page(search=needle, per_page=1_000_000)
    except AccountUnavailable as exc:
        return [], 0, Unreached(account, exc.error)
    except AwsError as exc:
        return [], 0, Unreached(account, exc)
    return [Found(account, r) for r in listed.rows], listed.total, None


def chosen_accounts(
    accounts: AccountServices, account_id: str = "", allowed: Collection[str] | None = None
) -> list[Account]:
    """The accounts a search covers, in the switcher's order (hub first, then by name):
    every one, or `account_id` only; `allowed`: those a limited user may work in (None:
    every one)."""
    listed = accounts.listed()
    return [
        a
        for a in (listed.accounts if listed else ())
        if (not account_id or a.account_id == account_id)
        and (allowed is None or a.account_id in allowed)
    ]


def search_all(
    accounts: AccountServices,
    user: str,
    needle: str,
    chosen: Sequence[Account],
    page: int = 1,
    known: dict[str, Unreached] | None = None,
) -> SearchResult:
    """Roles whose name contains `needle` (any case) in the `chosen` accounts, sorted by
    account (as chosen) and name. `known`: accounts found unavailable by the load just
    made (not asked again in the same request)."""
    skip = known or {}
    with ThreadPoolExecutor(max(1, min(SEARCH_WORKERS, len(chosen)))) as pool:
        # Each account in the request's context: its calls go out as the RoleDesk user.
        futures = [
            pool.submit(contextvars.copy_context().run, _one, accounts, a, user, needle)
            for a in chosen
            if a.account_id not in skip
        ]
        results = [f.result() for f in futures]
    results += [([], 0, u) for u in skip.values() if any(a is u.account for a in chosen)]
    rows = [found for part, _, _ in results for found in part]
    shown, page, pages = paged(rows, page, PER_PAGE)
    return SearchResult(
        rows=shown,
        matching=len(rows),
        total=sum(total for _, total, _ in results),
        page=page,
        pages=pages,
        unreached=[u for _, _, u in results if u is not None],
        searched=len(chosen),
    )


# Loading the lists ----------------------------------------------------------------------

LOADED, LOADING, UNAVAILABLE = "loaded", "loading", "unavailable"


@dataclass(frozen=True)
class AccountProgress:
    account: Account
    state: str  # LOADED, LOADING or UNAVAILABLE
    error: AwsError | None = None


@dataclass(frozen=True)
class Progress:
    """Where the chosen accounts' lists are: done when none is loading any more."""

    accounts: list[AccountProgress]
    unreached: dict[str, Unreached]  # from this round of loads, by account id

    @property
    def done(self) -> bool:
        return all(p.state != LOADING for p in self.accounts)

    def count(self, state: str) -> int:
        return sum(1 for p in self.accounts if p.state == state)


def _load(accounts: AccountServices, account: Account, user: str) -> Unreached | None:
    """Read one account's roles list into memory (AssumeRole, then ListRoles pagination)."""
    found = _one(accounts, account, user, "\0")  # a name never contains NUL: no rows kept
    return found[2]


class AccountLoads:
    """The roles lists being read in the background, per app: a round of loads per RoleDesk
    user (each user's calls go out with their own credentials), on one pool of
    SEARCH_WORKERS threads for everyone. A round is joined, not restarted, while it runs;
    once it has ended, the next request starts a new one for the lists still missing (an
    unavailable account is asked again then, as a search always did)."""

    def __init__(self, accounts: AccountServices) -> None:
        self.accounts = accounts
        self._pool = ThreadPoolExecutor(SEARCH_WORKERS, thread_name_prefix="all-accounts")
        self._rounds: dict[str, dict[str, Future[Unreached | None]]] = {}
        self._changed = threading.Condition()

    def _finished(self, _: Future[Unreached | None]) -> None:
        with self._changed:
            self._changed.notify_all()

    def _start(self, chosen: Sequence[Account], user: str) -> dict[str, Future[Unreached | None]]:
        with self._changed:
            loads = self._rounds.get(user, {})
            if all(f.done() for f in loads.values()):
                loads = {}  # the last round has ended: a new one
            for account in chosen:
                known = loads.get(account.account_id)
                if known is not None or self.accounts.in_memory(account.account_id):
                    continue
                future = self._pool.submit(
                    contextvars.copy_context().run, _load, self.accounts, account, user
                )
                future.add_done_callback(self._finished)
                loads[account.account_id] = future
            self._rounds[user] = loads
            return dict(loads)

    def progress(
        self, chosen: Sequence[Account], user: str, wait: float, *, any_change: bool = False
    ) -> Progress:
        """Starts (or joins) the loads of the chosen accounts' lists not in memory, waits
        up to `wait` seconds for all of them (`any_change`: for one more to end), and says
        where each account is."""
        loads = self._start(chosen, user)
        ours = [loads[a.account_id] for a in chosen if a.account_id in loads]
        ended = sum(1 for f in ours if f.done())
        deadline = time.monotonic() + wait
        with self._changed:
            while True:
                now_ended = sum(1 for f in ours if f.done())
                if now_ended == len(ours) or (any_change and now_ended > ended):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        states: list[AccountProgress] = []
        unreached: dict[str, Unreached] = {}
        for account in chosen:
            future = loads.get(account.account_id)
            if future is None or (future.done() and future.result() is None):
                states.append(AccountProgress(account, LOADED))
            elif not future.done():
                states.append(AccountProgress(account, LOADING))
            else:
                failed = future.result()
                assert failed is not None
                unreached[account.account_id] = failed
                states.append(AccountProgress(account, UNAVAILABLE, failed.error))
        return Progress(states, unreached)
