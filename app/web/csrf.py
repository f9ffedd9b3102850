"""Cross-site request forgery protection for every unsafe request.

Two independent checks (OWASP CSRF cheat sheet):
1. Fetch Metadata: a request whose `Sec-Fetch-Site` is present and not `same-origin` is refused.
2. A token: each browser gets a random token in an HttpOnly cookie; unsafe requests must echo it
   in the `csrf_token` form field (plain forms) or the `X-CSRF-Token` header (htmx, set through
   `hx-headers` on <body>). Compared in constant time.
GET, HEAD and OPTIONS never change state in RoleDesk, so they are not checked.
Once signed in, the token is also bound to the server-side session (app.auth.sessions): the
session stores the token's hash, set at sign-in together with a fresh cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "roledesk_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXPIRED = "The form has expired or did not come from RoleDesk. Reload the page and try again."


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(request: Request) -> str:
    """The token of this browser (set by CsrfCookieMiddleware)."""
    return str(request.scope.get("roledesk.csrf", ""))


class CsrfCookieMiddleware:
    """Gives each browser a token cookie and makes the token available to templates."""

    def __init__(self, app: ASGIApp, *, secure: bool = False) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        existing = request.cookies.get(COOKIE, "")
        token = existing if len(existing) == 43 else new_token()
        scope["roledesk.csrf"] = token

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and token != existing:
                secure = self.secure or scope.get("scheme") == "https"
                attrs = "Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", f"{COOKIE}={token}; {attrs}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def verify_csrf(request: Request) -> None:
    """FastAPI dependency applied to every route: refuse forged unsafe requests with 403."""
    if request.method in SAFE_METHODS:
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        raise HTTPException(403, "Cross-site request refused.")
    expected = request.cookies.get(COOKIE, "")
    sent = request.headers.get(HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(FIELD)
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise HTTPException(403, EXPIRED)
    # Signed in: the token must also be the one bound to the session at sign-in, so a cookie
    # planted by someone else (cookie tossing) does not pass.
    bound = getattr(request.state, "csrf_hash", None)
    if bound and not hmac.compare_digest(bound, hashlib.sha256(sent.encode()).hexdigest()):
        raise HTTPException(403, EXPIRED)
