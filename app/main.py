"""The FastAPI application. `create_app(services)` builds it; nothing runs at import."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from app.accounts.context import AccountServices
from app.accounts.errors import install_account_errors
from app.accounts.model import Account
from app.accounts.routes import app_hub
from app.accounts.routes import router as accounts_router
from app.accounts.urls import ACCOUNT_ID, AccountPrefix, account_base, with_base
from app.audit.routes import router as audit_router
from app.auth.admin import router as users_router
from app.auth.guard import (
    allowed_accounts,
    authorize,
    build_auth,
    install_auth,
    navigation_base,
)
from app.auth.permissions import PUBLIC, Role
from app.auth.routes import router as auth_router
from app.instances.routes import router as instances_router
from app.operations.routes import router as operations_router
from app.review.routes import router as review_router
from app.roles.lookup_budget import LookupBudget
from app.roles.manage import router as role_changes_router
from app.roles.routes import router as roles_router
from app.roles.trust_rebuild import router as trust_rebuild_router
from app.services import Services
from app.web.csrf import CsrfCookieMiddleware, csrf_token, verify_csrf
from app.web.errors import UnhandledErrorMiddleware, install_error_handlers
from app.web.headers import SecurityHeadersMiddleware
from app.web.shared_scope import SharedRequestMiddleware
from app.web.templating import Renderer, make_environment
from app.web.timing import ServerTimingMiddleware
from app.wizard.permissions_routes import router as wizard_permissions_router
from app.wizard.routes import router as wizard_router

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

NAVIGATION: list[tuple[str, str]] = [
    ("Roles", "/roles"),
    ("Search every account", "/all-accounts/roles"),
    ("Create role", "/create-role"),
    ("EC2 instances", "/instances"),
    ("Access review", "/access-review"),
    ("Audit history", "/audit"),
    ("Accounts", "/accounts"),
]


def may_change(request: Request) -> bool:
    user = getattr(request.state, "user", None)
    return user is not None and user.role >= Role.OPERATOR


def _switchable(request: Request, accounts: Sequence[Account]) -> list[Account]:
    allowed = set(allowed_accounts(request, [a.account_id for a in accounts]))
    return [a for a in accounts if a.account_id in allowed]


def account_layout(request: Request, accounts: AccountServices) -> dict[str, Any]:
    """The account the page is in: its prefix for every link, its name for the title and
    the header, and the accounts the switcher offers."""
    base = account_base(request.scope)
    account_id = request.scope.get(ACCOUNT_ID) or accounts.hub_id
    listed = accounts.listed()
    nav = navigation_base(request)
    return {
        "account_base": base,
        "account_id": account_id,
        "account_label": accounts.label(account_id),
        # A limited user is offered only their accounts (app.auth.account_limits).
        "switch_accounts": _switchable(request, listed.accounts if listed is not None else ()),
        # The header's links: in an account the user may work in (app.auth.guard).
        "navigation_base": nav,
        "navigation": [(label, with_base(nav, href)) for label, href in NAVIGATION],
    }


def layout_context(services: Services, accounts: AccountServices) -> Any:
    def for_request(request: Request) -> dict[str, Any]:
        return {
            "identity": services.identity,
            "aws_mode": services.mode_label,  # not "mode": pages use that name for their own
            "is_sandbox": services.settings.is_sandbox,
            "sandbox_endpoint": services.sandbox_endpoint,
            "region": services.settings.aws_region,
            "current_path": account_base(request.scope) + request.url.path,
            "csrf_token": csrf_token(request),
            "user": getattr(request.state, "user", None),
            # Whether to offer buttons that change something (operator and admin): a viewer
            # is not shown buttons that would only answer "not allowed".
            "may_change": may_change(request),
            **account_layout(request, accounts),
        }

    return for_request


def create_app(services: Services) -> FastAPI:
    settings = services.settings
    app = FastAPI(
        title="RoleDesk",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Every route: who is signed in and may they (app.auth.guard), then CSRF.
        dependencies=[Depends(authorize), Depends(verify_csrf)],
    )
    app.state.services = services
    app.state.auth = build_auth(services)
    accounts = AccountServices(services, lambda: app_hub(app))
    app.state.account_services = accounts
    app.state.renderer = Renderer(make_environment(), layout_context(services, accounts))
    app.state.lookup_budget = LookupBudget()  # GetRole calls per user (roles list activity)
    # Innermost: a 500 page passes through every middleware below, security headers included.
    app.add_middleware(UnhandledErrorMiddleware)
    # Other processes' changes are applied once per request, not once per inventory read.
    app.add_middleware(SharedRequestMiddleware)
    app.add_middleware(CsrfCookieMiddleware, secure=settings.https)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.host_allowlist())
    app.add_middleware(SecurityHeadersMiddleware, https=settings.https)
    # /accounts/<id>/... answered by today's routes, in that account (app.accounts.urls).
    app.add_middleware(AccountPrefix, hub_id=services.identity.account)
    app.add_middleware(ServerTimingMiddleware)  # outermost: times everything else
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(role_changes_router)
    app.include_router(trust_rebuild_router)
    app.include_router(operations_router)
    app.include_router(roles_router)
    app.include_router(instances_router)
    app.include_router(wizard_router)
    app.include_router(wizard_permissions_router)
    app.include_router(audit_router)
    app.include_router(review_router)
    app.include_router(accounts_router)

    @app.get("/healthz", include_in_schema=False, dependencies=[Depends(PUBLIC)])
    def healthz() -> PlainTextResponse:
        """Liveness for container health checks: the process answers."""
        return PlainTextResponse("ok")

    if settings.openapi:
        # Our own route (not FastAPI's openapi_url) so the sign-in check applies. No Swagger
        # UI: it needs inline scripts and a CDN, which the CSP forbids.
        @app.get("/openapi.json", include_in_schema=False)
        def openapi_schema() -> JSONResponse:
            return JSONResponse(app.openapi())

    install_error_handlers(app)
    install_account_errors(app)
    install_auth(app)
    return app
