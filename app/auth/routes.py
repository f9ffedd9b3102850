"""Sign-in, sign-out and the first-admin setup page."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.audit.audited import AuditContext
from app.auth.cookies import clear_session_cookies, set_session_cookies
from app.auth.guard import (
    Auth,
    current_session,
    get_auth,
    landing,
    safe_next,
    session_cookie_name,
)
from app.auth.permissions import PUBLIC, Role
from app.auth.users import UserError, UserView, check_name, check_password
from app.web.deps import RendererDep, audit_context
from app.web.templating import is_htmx

router = APIRouter(dependencies=[Depends(PUBLIC)])
log = logging.getLogger("roledesk.auth")

AuthDep = Annotated[Auth, Depends(get_auth)]
FormText = Annotated[str, Form()]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _record_sign_in(request: Request, name: str, outcome: str, error: str | None = None) -> None:
    """An audit `record` entry for a sign-in attempt (never the password)."""
    ctx = replace(audit_context(request), actor=name[:64] or "(no name)")
    request.app.state.services.audit_log.append(
        ctx.record(
            "roledesk:SignIn",
            outcome=outcome,
            target=f"roledesk:user/{name[:64]}",
            error_code=error,
        )
    )


def _signed_in_redirect(request: Request, auth: Auth, user: UserView, to: str) -> Response:
    old = request.cookies.get(session_cookie_name(request))
    if old:
        auth.sessions.destroy(old)  # never keep a session id from before sign-in
    response = RedirectResponse(landing(request.app, user, safe_next(to)), status_code=303)
    set_session_cookies(request, response, auth.sessions.create(user))
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(
    request: Request,
    render: RendererDep,
    next_: Annotated[str, Query(alias="next", max_length=2000)] = "/roles",
) -> Response:
    signed_in = current_session(request)
    if signed_in is not None:
        return RedirectResponse(
            landing(request.app, signed_in.user, safe_next(next_)), status_code=303
        )
    return render.page(request, "auth/sign_in.html", {"name": "", "next": safe_next(next_)})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    auth: AuthDep,
    render: RendererDep,
    name: FormText = "",
    password: FormText = "",
    next_: Annotated[str, Form(alias="next")] = "/roles",
) -> Response:
    name = name.strip()[:200]
    context = {"name": name, "next": safe_next(next_)}
    address = _client(request)
    if not name or not password:
        verdict = auth.throttle.check(name, address)
        attempt_id = None
    else:
        # Counted (as a failure) before the password is checked, in one atomic step, so
        # concurrent guesses count one by one (app.auth.throttle).
        verdict, attempt_id = auth.throttle.reserve(name, address)
    if not verdict.allowed:
        # Logged, not audited: refusals cost the attacker nothing, so a ledger entry for
        # each would let anyone grow the ledger at request rate.
        log.warning("sign-in refused by throttling: name=%r address=%s", name[:64], address)
        response = render.page(
            request, "auth/sign_in.html", {**context, "error": verdict.message}, status_code=429
        )
        response.headers["Retry-After"] = str(verdict.retry_after)
        return response
    if attempt_id is None:
        error = "Enter your user name and password."
        return render.page(
            request, "auth/sign_in.html", {**context, "error": error}, status_code=422
        )
    user = auth.users.verify(name, password)
    if user is None:
        _record_sign_in(request, name, "failed", "BadCredentials")
        error = "That user name and password do not match an active RoleDesk user."
        return render.page(
            request, "auth/sign_in.html", {**context, "error": error}, status_code=401
        )
    auth.throttle.succeeded(attempt_id)
    _record_sign_in(request, user.name, "succeeded")
    return _signed_in_redirect(request, auth, user, next_)


@router.post("/sign-out")
def sign_out(request: Request, auth: AuthDep) -> Response:
    signed_in = current_session(request)
    token = request.cookies.get(session_cookie_name(request))
    if token:
        auth.sessions.destroy(token)
    if signed_in is not None:
        ctx = replace(audit_context(request), actor=signed_in.user.name)
        request.app.state.services.audit_log.append(
            ctx.record("roledesk:SignOut", target=f"roledesk:user/{signed_in.user.name}")
        )
    response: Response = RedirectResponse("/sign-in?signed_out=1", status_code=303)
    if is_htmx(request):
        response = Response(status_code=200, headers={"HX-Redirect": "/sign-in?signed_out=1"})
    clear_session_cookies(request, response)
    return response


def _setup_allowed(auth: Auth, token: str) -> None:
    if auth.users.count() > 0:
        raise HTTPException(404, "RoleDesk is already set up: sign in instead.")
    if not auth.setup.is_valid(token):
        raise HTTPException(
            403,
            "This setup link is not valid: it was used, it expired (links last 15 minutes) or "
            "it was mistyped. Restart RoleDesk for a new link, or run `roledesk users add`.",
        )


@router.get("/setup", response_class=HTMLResponse)
def setup_page(
    request: Request,
    auth: AuthDep,
    render: RendererDep,
    token: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    _setup_allowed(auth, token)
    return render.page(request, "auth/setup.html", {"token": token, "name": "", "errors": {}})


@router.post("/setup", response_class=HTMLResponse)
def setup(
    request: Request,
    auth: AuthDep,
    render: RendererDep,
    token: FormText = "",
    name: FormText = "",
    password: FormText = "",
    confirm: FormText = "",
) -> Response:
    _setup_allowed(auth, token[:128])
    name = name.strip()[:200]
    errors = _new_user_errors(name, password, confirm)
    if errors:
        return render.page(
            request,
            "auth/setup.html",
            {"token": token, "name": name, "errors": errors},
            status_code=422,
        )
    if not auth.setup.consume(token):
        _setup_allowed(auth, "")  # another request used the link first: explain
    ctx = AuditContext(actor="setup-link", source_ip=_client(request))
    user = auth.users.add(ctx, name, Role.ADMIN, password)
    _record_sign_in(request, user.name, "succeeded")
    return _signed_in_redirect(request, auth, user, "/roles")


def _new_user_errors(name: str, password: str, confirm: str) -> dict[str, str]:
    """Field errors for a new user's name and password (shared with the users page)."""
    errors: dict[str, str] = {}
    try:
        check_name(name)
    except UserError as exc:
        errors[exc.field] = str(exc)
    try:
        check_password(password, name)
    except UserError as exc:
        errors[exc.field] = str(exc)
    if password != confirm:
        errors["confirm"] = "The two passwords differ."
    return errors
