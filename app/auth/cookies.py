"""Setting and clearing the session cookie (and rotating the CSRF cookie with it)."""

from __future__ import annotations

from fastapi import Request, Response

from app.auth.guard import COOKIE, HTTPS_COOKIE, is_https, session_cookie_name
from app.auth.sessions import NewSession
from app.web import csrf


def set_session_cookies(request: Request, response: Response, new: NewSession) -> None:
    """HttpOnly, SameSite=Lax, Path=/, Secure (and `__Host-`) over HTTPS; no Max-Age: the
    server decides when a session ends. The CSRF token changes with the session and is bound
    to it."""
    secure = is_https(request)
    response.set_cookie(
        session_cookie_name(request),
        new.token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.set_cookie(
        csrf.COOKIE, new.csrf_token, path="/", httponly=True, samesite="strict", secure=secure
    )


def clear_session_cookies(request: Request, response: Response) -> None:
    secure = is_https(request)
    for name in (COOKIE, HTTPS_COOKIE):
        if name in request.cookies:
            response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure)
    # A fresh CSRF token for the next person at this browser.
    response.set_cookie(
        csrf.COOKIE,
        csrf.new_token(),
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )
