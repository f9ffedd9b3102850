"""The roles of every account, searched at once (issue 17).

Each account's roles list is the one its own roles page uses (app.roles.inventory, in
memory once loaded), so a warm search filters memory only. The first search loads the lists
side by side, at most SEARCH_WORKERS (20) accounts at a time: the wait is about the slowest
account's ListRoles pagination, not their sum. An account that cannot be reached is reported
with AWS's error; the others are searched.
"""

from __future__ import annotations

import contextvars
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
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


def search_all(
    accounts: AccountServices,
    user: str,
    needle: str,
    account_id: str = "",
    page: int = 1,
    allowed: Collection[str] | None = None,
) -> SearchResult:
    """Roles whose name contains `needle` (any case) in every account, or in `account_id`
    only; sorted by account (hub first, then by name, as the switcher lists them) and name.
    `allowed`: the accounts a limited user may work in (None: every one)."""
    listed = accounts.listed()
    chosen = [
        a
        for a in (listed.accounts if listed else ())
        if (not account_id or a.account_id == account_id)
        and (allowed is None or a.account_id in allowed)
    ]
    with ThreadPoolExecutor(max(1, min(SEARCH_WORKERS, len(chosen)))) as pool:
        # Each account in the request's context: its calls go out as the RoleDesk user.
        futures = [
            pool.submit(contextvars.copy_context().run, _one, accounts, a, user, needle)
            for a in chosen
        ]
        results = [f.result() for f in futures]
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
