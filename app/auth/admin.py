"""The users page: admins list, add, re-role, disable/enable users and reset passwords in the
browser (the same service the `roledesk users` commands use). Admin only, every method."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.auth.guard import Auth, get_auth
from app.auth.permissions import ROLE_CHOICES, Role, require
from app.auth.routes import _new_user_errors
from app.auth.users import UserError, check_password
from app.web.deps import AuditContextDep, RendererDep
from app.web.templating import Renderer, redirect_after_post

router = APIRouter(dependencies=[Depends(require(Role.ADMIN))])

AuthDep = Annotated[Auth, Depends(get_auth)]
# Fixed texts chosen by code: a message from the query string would let a link show anything.
NOTICES = {
    "added": "User added.",
    "role": "Role changed.",
    "disabled": "User disabled and signed out.",
    "enabled": "User enabled.",
    "password": "Password reset; the user's sessions ended.",
    "accounts": "Accounts changed.",
}
FormText = Annotated[str, Form()]


def _page(
    request: Request,
    render: Renderer,
    auth: Auth,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    listed = request.app.state.account_services.listed()
    values = {
        "users": auth.users.list(),
        # The accounts an admin may limit a user to (None: the list cannot be read now).
        "known_accounts": listed.accounts if listed is not None else None,
        "account_errors": {},
        "roles": ROLE_CHOICES,
        "new": {"name": "", "role": "viewer"},
        "errors": {},
        "row_error": None,
        "notice": NOTICES.get(request.query_params.get("done", ""), ""),
        **context,
    }
    return render.page(request, "auth/users.html", values, status_code=status_code)


@router.get("/users", response_class=HTMLResponse)
def list_users(request: Request, auth: AuthDep, render: RendererDep) -> Response:
    return _page(request, render, auth)


@router.post("/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    auth: AuthDep,
    render: RendererDep,
    ctx: AuditContextDep,
    name: FormText = "",
    role: FormText = "viewer",
    password: FormText = "",
    confirm: FormText = "",
) -> Response:
    name = name.strip()[:200]
    new = {"name": name, "role": role if role in ROLE_CHOICES else "viewer"}
    errors = _new_user_errors(name, password, confirm)
    if role not in ROLE_CHOICES:
        errors["role"] = "Choose viewer, operator or admin."
    if not errors:
        try:
            auth.users.add(ctx, name, Role.parse(role), password)
        except UserError as exc:
            errors[exc.field] = str(exc)
    if errors:
        return _page(request, render, auth, status_code=422, new=new, errors=errors)
    return redirect_after_post(request, "/users?done=added")


def _row_change(
    request: Request, render: Renderer, auth: Auth, name: str, change: Any, done: str
) -> Response:
    try:
        change()
    except (UserError, ValueError) as exc:
        return _page(request, render, auth, status_code=422, row_error=(name, str(exc)))
    return redirect_after_post(request, f"/users?done={done}")


@router.post("/users/{name}/role", response_class=HTMLResponse)
def set_user_role(
    request: Request,
    name: str,
    auth: AuthDep,
    render: RendererDep,
    ctx: AuditContextDep,
    role: FormText = "",
) -> Response:
    return _row_change(
        request,
        render,
        auth,
        name,
        lambda: auth.users.set_role(ctx, name, Role.parse(role)),
        "role",
    )


@router.post("/users/{name}/disable", response_class=HTMLResponse)
def disable_user(
    request: Request, name: str, auth: AuthDep, render: RendererDep, ctx: AuditContextDep
) -> Response:
    def disable() -> None:
        user = auth.users.set_disabled(ctx, name, True)
        auth.sessions.destroy_for_user(user.id)

    return _row_change(request, render, auth, name, disable, "disabled")


@router.post("/users/{name}/enable", response_class=HTMLResponse)
def enable_user(
    request: Request, name: str, auth: AuthDep, render: RendererDep, ctx: AuditContextDep
) -> Response:
    return _row_change(
        request,
        render,
        auth,
        name,
        lambda: auth.users.set_disabled(ctx, name, False),
        "enabled",
    )


@router.post("/users/{name}/password", response_class=HTMLResponse)
def reset_user_password(
    request: Request,
    name: str,
    auth: AuthDep,
    render: RendererDep,
    ctx: AuditContextDep,
    password: FormText = "",
) -> Response:
    def reset() -> None:
        check_password(password, name)
        user = auth.users.reset_password(ctx, name, password)
        auth.sessions.destroy_for_user(user.id)  # whoever knew the old password is out

    return _row_change(request, render, auth, name, reset, "password")


@router.post("/users/{name}/accounts", response_class=HTMLResponse)
def set_user_accounts(
    request: Request,
    name: str,
    auth: AuthDep,
    render: RendererDep,
    ctx: AuditContextDep,
    accounts: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    """Limit a viewer or operator to the ticked accounts (none ticked: every account). Each
    id must be one RoleDesk knows now (the registry), so a typo cannot lock someone out."""
    listed = request.app.state.account_services.listed()
    error = ""
    if listed is None:
        error = "The list of accounts cannot be read now (see the Accounts page); try again."
    else:
        known = {a.account_id for a in listed.accounts}
        unknown = [a for a in dict.fromkeys(accounts) if a not in known]
        if unknown:
            shown = ", ".join(a[:40] for a in unknown[:3])
            error = f"Not an account RoleDesk manages: {shown}. Tick accounts from the list."
    if not error:
        try:
            auth.users.set_accounts(ctx, name, tuple(accounts))
        except UserError as exc:
            error = str(exc)
    if error:
        return _page(request, render, auth, status_code=422, account_errors={name: error})
    return redirect_after_post(request, "/users?done=accounts")
