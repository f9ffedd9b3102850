"""The central access check, applied to every route of the app as a FastAPI dependency.

It resolves the session cookie, sets `request.state.user` (read by the audit context and the
page header) and refuses the request unless the route is public or the user's in-app role is
enough (app.auth.permissions.required_role). Anonymous visitors are sent to the sign-in page
(full-page GETs) or get a 401 (htmx asks the browser to go to sign-in via HX-Redirect).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from app.accounts.urls import ACCOUNT_ID, account_base, account_of_path, in_account, prefix_of
from app.auth.account_limits import may_work_in, refuse_unless_allowed
from app.auth.permissions import Forbidden, Role, is_public, required_role
from app.auth.sessions import SessionStore, SignedIn
from app.auth.setup import SetupTokens
from app.auth.throttle import SignInThrottle
from app.auth.users import UsersService, UserView
from app.services import Services
from app.web.templating import Renderer, is_htmx

COOKIE = "roledesk_session"
HTTPS_COOKIE = "__Host-roledesk_session"


@dataclass
class Auth:
    users: UsersService
    sessions: SessionStore
    throttle: SignInThrottle
    setup: SetupTokens
    https: bool  # ROLEDESK_HTTPS: browsers use HTTPS even if this hop is plain HTTP


def build_auth(services: Services) -> Auth:
    settings = services.settings
    return Auth(
        users=UsersService(services.db, services.audit_log),
        sessions=SessionStore(
            services.db,
            idle=timedelta(minutes=settings.session_idle_minutes),
            max_age=timedelta(hours=settings.session_max_hours),
        ),
        throttle=SignInThrottle(services.db),
        setup=SetupTokens(services.db),
        https=settings.https,
    )


def get_auth(request: Request) -> Auth:
    auth: Auth = request.app.state.auth
    return auth


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or get_auth(request).https


def session_cookie_name(request: Request) -> str:
    """`__Host-` needs Secure, so the prefix is used exactly when the browser is on HTTPS."""
    return HTTPS_COOKIE if is_https(request) else COOKIE


def current_session(request: Request) -> SignedIn | None:
    """The live session of this request (resolved once), also stored on request.state."""
    if hasattr(request.state, "signed_in"):
        found: SignedIn | None = request.state.signed_in
        return found
    token = request.cookies.get(session_cookie_name(request), "")
    found = get_auth(request).sessions.resolve(token) if token else None
    request.state.signed_in = found
    request.state.user = found.user if found else None
    request.state.csrf_hash = found.csrf_hash if found else None
    return found


class SignInRequired(Exception):
    """No live session on a route that needs one."""


def authorize(request: Request) -> None:
    """App-wide dependency (plain def: the session lookup is a database read)."""
    signed_in = current_session(request)
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):  # every FastAPI route is one; refuse if not
        raise Forbidden(signed_in.user.role if signed_in else Role.VIEWER, Role.ADMIN)
    if is_public(route):
        return
    if signed_in is None:
        raise SignInRequired
    needed = required_role(route, request.method)
    if signed_in.user.role < needed:
        raise Forbidden(signed_in.user.role, needed)
    if signed_in.user.limited:
        account_id = request_account(request)
        if account_id is not None:
            refuse_unless_allowed(signed_in.user.role, signed_in.user.accounts, [account_id])


def request_account(request: Request) -> str | None:
    """The AWS account the request works in: a member account's id from its URL prefix, the
    hub's for the other account pages, None for pages of no account (users, sign-in, the
    account list, the search across accounts, the cross-account pair: those that name
    accounts check them themselves)."""
    account_id: str | None = request.scope.get(ACCOUNT_ID)
    if account_id:
        return account_id
    hub: str = request.app.state.services.identity.account
    return account_of_path(request.scope.get("path", ""), hub)


def home_base(app: Any, user: UserView | None) -> str:
    """The prefix of the account a user starts in: the hub's (none), or, for a user limited
    to accounts that leave the hub out, the first of theirs in the switcher's order (else
    sign-in, `/` and the header's links would take them to a 403 page)."""
    if user is None or not user.limited:
        return ""
    hub: str = app.state.services.identity.account
    if hub in user.accounts:
        return ""
    listed = app.state.account_services.listed()
    order = [a.account_id for a in listed.accounts] if listed is not None else []
    first = next((a for a in order if a in user.accounts), user.accounts[0])
    return prefix_of(first)


def landing(app: Any, user: UserView, target: str) -> str:
    """Where sign-in sends `user` who asked for `target`: there, unless it is a page of an
    account they may not work in; then their own start (home_base) roles page."""
    if user.limited:
        hub: str = app.state.services.identity.account
        account_id = account_of_path(urlsplit(target).path, hub)
        if account_id is not None and not may_work_in(user.role, user.accounts, account_id):
            return home_base(app, user) + "/roles"
    return target


def navigation_base(request: Request) -> str:
    """The prefix of the header's links: the page's account, unless the signed-in user may
    not work in it (or the page is of no account) and is limited to accounts without the
    hub: then their start account (home_base), so no header link leads to a 403 page."""
    user: UserView | None = getattr(request.state, "user", None)
    here = account_base(request.scope)
    if user is None or not user.limited:
        return here
    account_id = request_account(request)
    if account_id is not None and may_work_in(user.role, user.accounts, account_id):
        return here
    return home_base(request.app, user)


def refuse_other_accounts(request: Request, *account_ids: str) -> None:
    """For routes that name accounts in their form (the cross-account pair): a limited
    user is refused unless every one of them is theirs."""
    signed_in = current_session(request)
    if signed_in is not None and signed_in.user.limited:
        refuse_unless_allowed(signed_in.user.role, signed_in.user.accounts, account_ids)


def allowed_accounts(request: Request, account_ids: list[str]) -> list[str]:
    """The ones of `account_ids` the signed-in user may work in (the switcher, lists)."""
    user = getattr(request.state, "user", None)
    if user is None or not user.limited:
        return account_ids
    return [a for a in account_ids if a in user.accounts]


def safe_next(value: str | None) -> str:
    """Only a path on this site (no scheme, no //host, no backslash tricks)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/roles"
    if value.startswith(("/sign-in", "/sign-out", "/setup")) or len(value) > 2000:
        return "/roles"
    return value


def _return_path(request: Request) -> str:
    if is_htmx(request):
        # The page the user is on, not the fragment URL htmx asked for.
        parts = urlsplit(request.headers.get("HX-Current-URL", ""))
        return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    query = request.url.query
    path = in_account(request.scope, request.url.path)  # a member account's page stays one
    return safe_next(path + (f"?{query}" if query else ""))


def sign_in_url(request: Request) -> str:
    return "/sign-in?" + urlencode({"next": _return_path(request)})


def install_auth(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        url = sign_in_url(request)
        if request.method in ("GET", "HEAD") and not is_htmx(request):
            return RedirectResponse(url, status_code=303)
        renderer: Renderer = request.app.state.renderer
        response = renderer.page(
            request,
            "errors/error.html",
            {
                "title": "Sign in",
                "message": "You are not signed in (or your session has ended). Sign in again.",
                "aws_error": None,
            },
            status_code=401,
        )
        if is_htmx(request):
            response.headers["HX-Redirect"] = url
        return response
