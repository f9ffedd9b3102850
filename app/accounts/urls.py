"""Where a member account's pages live: `/accounts/<12-digit id>/...`.

AccountPrefix strips the prefix, so the routes RoleDesk has for its own (hub) account answer
for every account; the id stays in the request's scope. Links, form actions and redirects add
the prefix back (`account_base` in templates, `in_account` in redirects), so a person stays in
the account they picked. The hub keeps today's URLs: `/accounts/<hub id>/roles` is `/roles`.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

ACCOUNT_ID = "roledesk.account_id"  # scope key: a member account's id from the URL
PREFIX = re.compile(r"^/accounts/(\d{12})(/.*)?$")
# Pages that belong to no account: their links never take the prefix.
GLOBAL = (
    "/users",
    "/sign-in",
    "/sign-out",
    "/setup",
    "/accounts",
    "/all-accounts",
    "/static",
    "/healthz",
)


def prefix_of(member_id: str | None) -> str:
    """The prefix of every link in member account `member_id` (None: the hub, which has no
    prefix)."""
    return f"/accounts/{member_id}" if member_id else ""


def account_base(scope: Mapping[str, Any]) -> str:
    """The prefix of every link in the request's account: empty for the hub."""
    return prefix_of(scope.get(ACCOUNT_ID))


# The prefix of the page being rendered, for macros imported without the page's context
# (`{% from "_pager.html" import pager %}`): they see the template globals only.
rendering_base: contextvars.ContextVar[str] = contextvars.ContextVar(
    "roledesk_rendering_base", default=""
)


class RenderingBase:
    """The template global `account_base`: the prefix of the page being rendered."""

    def __str__(self) -> str:
        return rendering_base.get()

    def __html__(self) -> str:  # digits and slashes only: nothing to escape
        return rendering_base.get()

    def __bool__(self) -> bool:
        return bool(rendering_base.get())


def with_base(base: str, url: str) -> str:
    """`url` (a path of RoleDesk's) in the account of prefix `base` (empty: the hub)."""
    if not url.startswith("/") or url.startswith("//"):
        return url
    if any(url == g or url.startswith((g + "/", g + "?")) for g in GLOBAL):
        return url
    return base + url


def in_account(scope: Mapping[str, Any], url: str) -> str:
    """`url` (a path of RoleDesk's) in the request's account."""
    return with_base(account_base(scope), url)


def account_of_path(path: str, hub_id: str) -> str | None:
    """The account a path of RoleDesk's works in: a member's id from its prefix, None for
    the pages of no account (GLOBAL, and `/`, which only sends a person where they start),
    the hub's id otherwise."""
    found = PREFIX.match(path)
    if found:
        return found.group(1)
    if path == "/" or any(path == g or path.startswith(g + "/") for g in GLOBAL):
        return None
    return hub_id


class AccountPrefix:
    """ASGI middleware: `/accounts/<id>/rest` is answered by the route for `/rest`."""

    def __init__(self, app: ASGIApp, hub_id: str) -> None:
        self.app = app
        self.hub_id = hub_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = PREFIX.match(scope["path"])
            if found:
                rest = found.group(2) or "/"
                scope = dict(scope)
                scope["path"] = rest
                scope["raw_path"] = rest.encode()
                if found.group(1) != self.hub_id:
                    scope[ACCOUNT_ID] = found.group(1)
        await self.app(scope, receive, send)
