"""Changing a role after it exists: trust policy, settings, revoke sessions, delete.

Every change is form -> review (before/after, policy findings, hidden fingerprint of the
state it was based on) -> "Apply changes". Apply reads the role again and refuses, changing
nothing, when the fingerprint differs (changed behind your back); otherwise the change's plan
runs on the operations engine, one audited operation. Plain forms; no JavaScript needed.
"""

from __future__ import annotations

import difflib
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from app.audit.audited import AuditContext
from app.auth.permissions import Role, require
from app.operations import progress
from app.operations.engine import Engine
from app.operations.plan import Plan
from app.roles import changes
from app.roles.checks import analyse
from app.services import Services
from app.web.deps import AuditContextDep, RendererDep, ServicesDep
from app.web.templating import Renderer, redirect_after_post
from app.wizard.web import FormDep

router = APIRouter(dependencies=[Depends(require(Role.OPERATOR))])


def _name(name: str) -> str:
    if len(name) > 64 or not name or any(ord(c) < 32 or c in "\ufffe\uffff" for c in name):
        raise HTTPException(404, "There is no such role.")
    return name


def diff(before: str, after: str) -> list[str]:
    return list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), "current", "after the change", lineterm=""
        )
    )


def _page(
    request: Request,
    render: Renderer,
    context: dict[str, Any],
    status: int = 200,
) -> Response:
    return render.page(request, "roles/change.html", context, status_code=status)


def _run(services: Services, ctx: AuditContext, plan: Plan) -> progress.Progress | None:
    engine = Engine(services)
    engine.record_start(ctx, plan)
    result = engine.run(ctx, plan)
    services.inventory.refresh()  # the roles list reflects the change at once
    if result.ok:
        return None
    return progress.load(services.db, ctx.operation_id)


def _conflict(
    request: Request, render: Renderer, role: Any, what: str, now: str, was: str
) -> Response:
    return _page(
        request,
        render,
        {
            "mode": "conflict",
            "role": role,
            "what": what,
            "current": now,
            "diff": diff(was, now),
        },
        409,
    )


def _outcome(
    request: Request, render: Renderer, role_name: str, run: progress.Progress | None, anchor: str
) -> Response:
    if run is None:
        return redirect_after_post(request, f"/roles/{role_name}#{anchor}")
    return _page(request, render, {"mode": "result", "role_name": role_name, "run": run}, 502)


# Trust policy -----------------------------------------------------------------------------


@router.get("/roles/{name}/trust/edit", response_class=HTMLResponse)
def edit_trust(request: Request, name: str, services: ServicesDep, render: RendererDep) -> Response:
    role = services.iam.get_role(_name(name))
    state = changes.trust_state(role)
    return _page(
        request,
        render,
        {
            "mode": "form",
            "kind": "trust",
            "role": role,
            "text": changes.pretty(state["trust"]),
            "base": changes.fingerprint(state),
            "errors": [],
        },
    )


def _trust_checked(
    request: Request, services: Services, render: Renderer, name: str, form: Any
) -> tuple[Any, Any, Response | None]:
    role = services.iam.get_role(_name(name))
    text = form.get("document")
    analysis = analyse(text, "trust", services.identity.account)
    if not analysis.ok:
        page = _page(
            request,
            render,
            {
                "mode": "form",
                "kind": "trust",
                "role": role,
                "text": text,
                "base": form.get("base"),
                "errors": analysis.errors,
            },
            422,
        )
        return role, analysis, page
    return role, analysis, None


@router.post("/roles/{name}/trust/review", response_class=HTMLResponse)
def review_trust(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    role, analysis, refused = _trust_checked(request, services, render, name, form)
    if refused is not None:
        return refused
    before = changes.pretty(changes.trust_state(role)["trust"])
    after = changes.pretty(analysis.document)
    return _page(
        request,
        render,
        {
            "mode": "review",
            "kind": "trust",
            "role": role,
            "diff": diff(before, after),
            "warnings": analysis.warnings,
            "fields": {"document": form.get("document"), "base": form.get("base")},
            "action": f"/roles/{role.name}/trust/apply",
        },
    )


@router.post("/roles/{name}/trust/apply", response_class=HTMLResponse)
def apply_trust(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    role, analysis, refused = _trust_checked(request, services, render, name, form)
    if refused is not None:
        return refused
    state = changes.trust_state(role)
    if changes.fingerprint(state) != form.get("base"):
        return _conflict(
            request,
            render,
            role,
            "trust policy",
            changes.pretty(state["trust"]),
            form.get("document"),
        )
    run = _run(services, ctx, changes.trust_plan(services, role, analysis.document))
    return _outcome(request, render, role.name, run, "trust")


# Settings ---------------------------------------------------------------------------------


def _settings_form(form: Any) -> tuple[str, int | None, dict[str, str]]:
    errors: dict[str, str] = {}
    description = form.get("description")
    if len(description) > 1000:
        errors["description"] = "A description is at most 1,000 characters."
    preset = form.get("preset")
    hours = {str(h): h for h in changes.SESSION_PRESETS}
    raw = str(hours[preset] * 3600) if preset in hours else form.get("max_session_seconds")
    seconds, error = changes.parse_seconds(raw)
    if error:
        errors["max_session_seconds"] = error
    return description, seconds, errors


def _settings_page(
    request: Request,
    render: Renderer,
    role: Any,
    description: str,
    seconds: str,
    base: str,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return _page(
        request,
        render,
        {
            "mode": "form",
            "kind": "settings",
            "role": role,
            "description": description,
            "seconds": seconds,
            "presets": changes.SESSION_PRESETS,
            "base": base,
            "field_errors": errors,
        },
        status,
    )


@router.get("/roles/{name}/settings/edit", response_class=HTMLResponse)
def edit_settings(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    role = services.iam.get_role(_name(name))
    base = changes.fingerprint(changes.settings_state(role))
    return _settings_page(
        request, render, role, role.description, str(role.max_session_duration), base, {}
    )


@router.post("/roles/{name}/settings/review", response_class=HTMLResponse)
def review_settings(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    role = services.iam.get_role(_name(name))
    description, seconds, errors = _settings_form(form)
    if errors or seconds is None:
        return _settings_page(
            request,
            render,
            role,
            description,
            form.get("max_session_seconds"),
            form.get("base"),
            errors,
            422,
        )
    return _page(
        request,
        render,
        {
            "mode": "review",
            "kind": "settings",
            "role": role,
            "rows": [
                ("Description", role.description or "(none)", description or "(none)"),
                ("Maximum session duration", f"{role.max_session_duration} s", f"{seconds} s"),
            ],
            "warnings": [],
            "fields": {
                "description": description,
                "max_session_seconds": str(seconds),
                "base": form.get("base"),
            },
            "action": f"/roles/{role.name}/settings/apply",
        },
    )


@router.post("/roles/{name}/settings/apply", response_class=HTMLResponse)
def apply_settings(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    role = services.iam.get_role(_name(name))
    description, seconds, errors = _settings_form(form)
    if errors or seconds is None:
        return _settings_page(
            request,
            render,
            role,
            description,
            form.get("max_session_seconds"),
            form.get("base"),
            errors,
            422,
        )
    state = changes.settings_state(role)
    if changes.fingerprint(state) != form.get("base"):
        wanted = {"description": description, "max_session_duration": seconds}
        return _conflict(
            request,
            render,
            role,
            "settings",
            json.dumps(state, indent=2),
            json.dumps(wanted, indent=2),
        )
    run = _run(services, ctx, changes.settings_plan(services, role, description, seconds))
    return _outcome(request, render, role.name, run, "summary")


# Revoke sessions --------------------------------------------------------------------------


@router.get("/roles/{name}/revoke", response_class=HTMLResponse)
def revoke_form(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    role = services.iam.get_role(_name(name))
    return _page(
        request,
        render,
        {
            "mode": "revoke",
            "role": role,
            "last": changes.last_revoked(services, role.name),
            "error": "",
        },
    )


@router.post("/roles/{name}/revoke", response_class=HTMLResponse)
def revoke(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    role = services.iam.get_role(_name(name))
    if form.get("confirm") != "yes":
        return _page(
            request,
            render,
            {
                "mode": "revoke",
                "role": role,
                "last": changes.last_revoked(services, role.name),
                "error": "Tick the box to confirm.",
            },
            422,
        )
    run = _run(services, ctx, changes.revoke_plan(services, role, datetime.now(UTC)))
    return _outcome(request, render, role.name, run, "revoke")


# Delete -----------------------------------------------------------------------------------


def _delete_page(
    request: Request,
    render: Renderer,
    radius: changes.BlastRadius,
    error: str = "",
    status: int = 200,
    run: Any = None,
) -> Response:
    role = radius.role
    return _page(
        request,
        render,
        {
            "mode": "delete",
            "role": role,
            "radius": radius,
            "refusal": changes.service_linked_refusal(role)
            if changes.is_service_linked(role)
            else "",
            "base": changes.fingerprint(radius.state()),
            "error": error,
            "run": run,
        },
        status,
    )


@router.get("/roles/{name}/delete", response_class=HTMLResponse)
def delete_form(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    return _delete_page(request, render, changes.blast_radius(services, _name(name)))


@router.post("/roles/{name}/delete", response_class=HTMLResponse)
def delete(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    radius = changes.blast_radius(services, _name(name))
    role = radius.role
    if changes.is_service_linked(role):
        return _delete_page(request, render, radius, status=422)
    if form.get("confirm") != role.name:
        return _delete_page(
            request, render, radius, f"Type the role name, {role.name}, to confirm.", 422
        )
    if changes.fingerprint(radius.state()) != form.get("base"):
        return _delete_page(
            request,
            render,
            radius,
            "The role changed since this page was loaded (policies or instance profiles); "
            "nothing was deleted. Check what is listed now and confirm again.",
            409,
        )
    run = _run(services, ctx, changes.delete_plan(services, radius))
    if run is None:
        return redirect_after_post(request, f"/roles?deleted={role.name}")
    # A step failed: show what was done and what was not; confirming again continues.
    return _delete_page(
        request, render, changes.blast_radius(services, role.name), status=502, run=run
    )
