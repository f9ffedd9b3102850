"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.audit.audited import AuditContext, os_user
from app.services import Services
from app.web.templating import Renderer


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_renderer(request: Request) -> Renderer:
    renderer: Renderer = request.app.state.renderer
    return renderer


def actor_name(request: Request) -> str:
    """The person acting: the signed-in user when there is one, else the OS user running
    RoleDesk."""
    user = getattr(request.state, "user", None)
    name = getattr(user, "name", None)
    return str(name) if name else os_user()


def audit_context(request: Request) -> AuditContext:
    """Who, from where: one new operation id per request."""
    client = request.client.host if request.client else None
    return AuditContext(
        actor=actor_name(request),
        source_ip=client,
        user_agent=request.headers.get("user-agent", "")[:500] or None,
    )


ServicesDep = Annotated[Services, Depends(get_services)]
RendererDep = Annotated[Renderer, Depends(get_renderer)]
AuditContextDep = Annotated[AuditContext, Depends(audit_context)]
