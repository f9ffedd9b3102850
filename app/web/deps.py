"""FastAPI dependencies shared by the routers.

The `Annotated` dependencies below are `async def` wrappers around plain functions: they do
no I/O, and FastAPI runs every plain-`def` dependency in the thread pool, a hand-off that
costs more than the work (docs/performance.md, issue 3). The plain functions stay callable
from ordinary code."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from app.accounts.context import acting_user
from app.accounts.urls import ACCOUNT_ID
from app.audit.audited import AuditContext, os_user
from app.services import Services
from app.web.templating import Renderer

RESOLVED = "roledesk.services"  # scope key: the objects get_services picked for the request


def get_services(request: Request) -> Services:
    """The objects for the account the request works in (app.accounts.context): the hub's
    own, or a member account's when the URL starts with /accounts/<id>/. Raises
    UnknownAccount or AccountUnavailable (each has its page) for a member account."""
    resolved: Services | None = request.scope.get(RESOLVED)
    if resolved is not None:
        return resolved
    services: Services = request.app.state.services
    account_id = request.scope.get(ACCOUNT_ID)
    user = actor_name(request)
    acting_user.set(user)
    if account_id:
        services = request.app.state.account_services.for_account(account_id, user)
    request.scope[RESOLVED] = services
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


async def _services(request: Request) -> Services:
    acting_user.set(actor_name(request))  # the endpoint's thread copies this context
    account_id = request.scope.get(ACCOUNT_ID)
    if account_id and request.scope.get(RESOLVED) is None:
        # A member account: its first request may call AssumeRole; not on the event loop.
        return await run_in_threadpool(get_services, request)
    return get_services(request)


async def _renderer(request: Request) -> Renderer:
    return get_renderer(request)


async def _audit_context(request: Request) -> AuditContext:
    return audit_context(request)


ServicesDep = Annotated[Services, Depends(_services)]
RendererDep = Annotated[Renderer, Depends(_renderer)]
AuditContextDep = Annotated[AuditContext, Depends(_audit_context)]
