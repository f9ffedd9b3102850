"""Which AWS accounts a RoleDesk user may work in.

A viewer or operator can be limited to a set of accounts (admins set it on the Users page or
with `roledesk users limit`); an empty set means every account, and admins are never limited.
Like the AWS console, a limit covers reading too: a limited user is not offered other
accounts in the switcher and is refused their pages, not only their changes. The guard
(app.auth.guard.authorize) applies it to every route from the account in the request's URL;
the cross-account pair, which names its two accounts in the form, checks both
(`refuse_unless_allowed`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from fastapi import HTTPException

from app.auth.permissions import Role

ACCOUNT_ID = re.compile(r"\d{12}")
MAX_ACCOUNTS = 1000  # far more than an organization's default quota of 10 (raised: 1000s)


class AccountLimitError(ValueError):
    """An account limit that cannot be stored, explained for the person who asked."""


def parse_limit(stored: str) -> tuple[str, ...]:
    """The stored comma-separated ids as a tuple (empty: every account)."""
    return tuple(part for part in stored.split(",") if part)


def format_limit(accounts: Iterable[str]) -> str:
    return ",".join(accounts)


def clean_accounts(accounts: Iterable[str]) -> tuple[str, ...]:
    """Trimmed, de-duplicated, sorted 12-digit ids; raises AccountLimitError otherwise."""
    cleaned = sorted({a.strip() for a in accounts if a.strip()})
    bad = [a for a in cleaned if not ACCOUNT_ID.fullmatch(a)]
    if bad:
        shown = ", ".join(repr(a[:40]) for a in bad[:3])
        raise AccountLimitError(f"An AWS account id is 12 digits: {shown} is not.")
    if len(cleaned) > MAX_ACCOUNTS:
        raise AccountLimitError(f"At most {MAX_ACCOUNTS} accounts.")
    return tuple(cleaned)


def may_work_in(role: Role, limit: tuple[str, ...], account_id: str) -> bool:
    return role >= Role.ADMIN or not limit or account_id in limit


class OutsideAccountLimit(HTTPException):
    def __init__(self, account_id: str, limit: tuple[str, ...]) -> None:
        allowed = ", ".join(limit)
        super().__init__(
            403,
            f"Your RoleDesk user may work only in account{'s' if len(limit) > 1 else ''} "
            f"{allowed}, not in account {account_id}. Pick one of yours on the Accounts "
            "page (/accounts); an admin can change this on the Users page.",
        )


def refuse_unless_allowed(role: Role, limit: tuple[str, ...], accounts: Iterable[str]) -> None:
    """Raises OutsideAccountLimit for the first of `accounts` the user may not work in."""
    for account_id in accounts:
        if account_id and not may_work_in(role, limit, account_id):
            raise OutsideAccountLimit(account_id, limit)
