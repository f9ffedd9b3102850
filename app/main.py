"""The FastAPI application. `create_app(services)` builds it; nothing runs at import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles

from app.audit.routes import router as audit_router
from app.roles.routes import router as roles_router
from app.services import Services
from app.web.csrf import CsrfCookieMiddleware, csrf_token, verify_csrf
from app.web.errors import install_error_handlers
from app.web.templating import Renderer, make_environment

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

NAVIGATION: list[tuple[str, str]] = [
    ("Roles", "/roles"),
    ("Audit history", "/audit"),
]


def layout_context(services: Services) -> Any:
    def for_request(request: Request) -> dict[str, Any]:
        return {
            "identity": services.identity,
            "mode": services.mode_label,
            "is_sandbox": services.settings.is_sandbox,
            "sandbox_endpoint": services.sandbox_endpoint,
            "region": services.settings.aws_region,
            "navigation": NAVIGATION,
            "current_path": request.url.path,
            "csrf_token": csrf_token(request),
        }

    return for_request


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="RoleDesk",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(verify_csrf)],
    )
    app.state.services = services
    app.state.renderer = Renderer(make_environment(), layout_context(services))
    app.add_middleware(CsrfCookieMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(roles_router)
    app.include_router(audit_router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        """Liveness for container health checks: the process answers."""
        return PlainTextResponse("ok")

    install_error_handlers(app)
    return app
