"""Changing a role after it exists: trust policy, settings, revoke sessions, delete.

Every change is form -> review (before/after, policy findings, hidden fingerprint of the
state it was based on) -> "Apply changes". Apply reads the role again and refuses, changing
nothing, when the fingerprint differs (changed behind your back); otherwise the change's plan
runs on the operations engine, one audited operation. Plain forms; no JavaScript needed.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from app.audit.audited import AuditContext
from app.auth.permissions import Role, require
from app.aws.errors import NotFound
from app.instances.role_instances import RegionScan
from app.operations import progress
from app.operations.engine import Engine
from app.operations.plan import Plan
from app.roles import changes, checks
from app.roles.applied import applied_url
from app.roles.checks import Kind, RiskReview, analyse
from app.roles.routes import region_scan
from app.services import Services
from app.web.deps import AuditContextDep, RendererDep, ServicesDep
from app.web.params import is_role_name
from app.web.templating import Renderer, redirect_after_post
from app.wizard.web import FormDep

router = APIRouter(dependencies=[Depends(require(Role.OPERATOR))])


def checked_name(name: str) -> str:
    if not is_role_name(name):  # cannot exist in AWS: never sent there
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


# Independent steps of a delete (detaches, inline deletes, profile removals) run side by side:
# a role has at most 20 managed policies, and rarely more than a few inline ones.
DELETE_WORKERS = 8


def _run(
    services: Services, ctx: AuditContext, plan: Plan, workers: int = 1
) -> progress.Progress | None:
    """Run the plan now; None when every step succeeded, else its progress to show. The roles
    list follows each change at once (the audited path's listener re-reads the role)."""
    engine = Engine(services, workers=workers)
    engine.record_start(ctx, plan)
    result = engine.run(ctx, plan)
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
    request: Request,
    render: Renderer,
    role_name: str,
    run: progress.Progress | None,
    anchor: str,
    operation_id: str,
) -> Response:
    if run is None:  # the role's page names what was applied (app.roles.applied)
        return redirect_after_post(request, applied_url(role_name, operation_id, anchor))
    return _failed(request, render, role_name, run)


def _failed(request: Request, render: Renderer, role_name: str, run: progress.Progress) -> Response:
    """The page of a change AWS refused: its steps, what was put back, its audit record. The
    role may be gone or changed, so the page names it, not a `role` read from AWS."""
    context = {"mode": "result", "role": None, "role_name": role_name, "run": run}
    return _page(request, render, context, 502)


@dataclass(frozen=True)
class Reviewed:
    """A change checked, not stale, and ready for the risk gate: its plan, the risk review of
    the role after it, how to show the review again (with the gate's message), the role page
    section to return to, and an optional follow-up operation run only when the plan
    succeeded (an inline policy renamed: the old one is deleted after)."""

    role_name: str
    plan: Plan
    risk: RiskReview
    review_again: Callable[[RiskReview, str], Response]
    anchor: str
    then: Callable[[AuditContext], progress.Progress | None] | None = None


def _gated_apply(
    request: Request,
    render: Renderer,
    services: Services,
    ctx: AuditContext,
    form: Any,
    change: Reviewed,
) -> Response:
    """The last part of every reviewed change (trust, managed policies, inline policies,
    boundary): refuse with the review again, naming what is missing, unless each security
    warning the change brings is acknowledged; otherwise run the plan with the review kept in
    its audit event and show the outcome."""
    acknowledged = form.all("acknowledge")
    if message := checks.gate_message(change.risk, acknowledged):
        return change.review_again(change.risk, message)
    run = _run(services, ctx, checks.with_review(change.plan, change.risk, acknowledged))
    if run is None and change.then is not None:
        run = change.then(ctx.new_operation())
    return _outcome(request, render, change.role_name, run, change.anchor, ctx.operation_id)


# Live checks (htmx, as the person types); without JavaScript the review shows the same -------

CHECK_KINDS: dict[str, Kind] = {"trust": "trust", "inline": "identity"}


@router.post("/roles/{name}/check/{kind}", response_class=HTMLResponse)
def check_document(
    request: Request,
    name: str,
    kind: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
) -> Response:
    """The editor's findings for the text as typed, unsaved: nothing is sent to AWS."""
    checked_name(name)
    if kind not in CHECK_KINDS:
        raise HTTPException(404, "There is no such check.")
    checked = analyse(form.get("document"), CHECK_KINDS[kind], services.identity.account)
    findings = checked.errors + checked.findings
    context = {"findings": findings, "target": "document-findings"}
    return render.page(request, "policy/_check.html", context)


# Trust policy -----------------------------------------------------------------------------


@router.get("/roles/{name}/trust/edit", response_class=HTMLResponse)
def edit_trust(request: Request, name: str, services: ServicesDep, render: RendererDep) -> Response:
    role = services.iam.get_role(checked_name(name))
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
    role = services.iam.get_role(checked_name(name))
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
    return trust_review(request, render, services, role, analysis.document, form)


def trust_review(
    request: Request,
    render: Renderer,
    services: Services,
    role: Any,
    document: Any,
    form: Any,
    risk: RiskReview | None = None,
    gate_error: str = "",
) -> Response:
    before = changes.pretty(changes.trust_state(role)["trust"])
    return _review(
        request,
        render,
        role,
        f"/roles/{role.name}/trust/apply",
        {"document": form.get("document"), "base": form.get("base")},
        diff_lines=diff(before, changes.pretty(document)),
        risk=risk or checks.trust_review(services, role.trust_policy, document),
        acknowledged=form.all("acknowledge"),
        gate_error=gate_error,
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
    change = Reviewed(
        role.name,
        changes.trust_plan(services, role, analysis.document),
        checks.trust_review(services, role.trust_policy, analysis.document),
        lambda risk, message: trust_review(
            request, render, services, role, analysis.document, form, risk, message
        ),
        "trust",
    )
    return _gated_apply(request, render, services, ctx, form, change)


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


def _settings_checked(
    request: Request, services: Services, render: Renderer, name: str, form: Any
) -> tuple[Any, str, int | None, Response | None]:
    """The role and the submitted settings, or the form again with the errors (422)."""
    role = services.iam.get_role(checked_name(name))
    description, seconds, errors = _settings_form(form)
    if not errors:
        return role, description, seconds, None
    page = _settings_page(
        request,
        render,
        role,
        description,
        form.get("max_session_seconds"),
        form.get("base"),
        errors,
        422,
    )
    return role, description, seconds, page


@router.get("/roles/{name}/settings/edit", response_class=HTMLResponse)
def edit_settings(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    role = services.iam.get_role(checked_name(name))
    base = changes.fingerprint(changes.settings_state(role))
    return _settings_page(
        request, render, role, role.description, str(role.max_session_duration), base, {}
    )


@router.post("/roles/{name}/settings/review", response_class=HTMLResponse)
def review_settings(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    role, description, seconds, refused = _settings_checked(request, services, render, name, form)
    if refused is not None:
        return refused
    assert seconds is not None  # no errors: the duration parsed
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
    role, description, seconds, refused = _settings_checked(request, services, render, name, form)
    if refused is not None:
        return refused
    assert seconds is not None  # no errors: the duration parsed
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
    return _outcome(request, render, role.name, run, "summary", ctx.operation_id)


# Revoke sessions --------------------------------------------------------------------------


@router.get("/roles/{name}/revoke", response_class=HTMLResponse)
def revoke_form(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    role = services.iam.get_role(checked_name(name))
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
    role = services.iam.get_role(checked_name(name))
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
    return _outcome(request, render, role.name, run, "revoke", ctx.operation_id)


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


def _scan(request: Request, services: Services) -> RegionScan:
    """Every region RoleDesk knows (the EC2 instances page's list)."""
    return region_scan(request, services)


@router.get("/roles/{name}/delete", response_class=HTMLResponse)
def delete_form(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    radius = changes.blast_radius(services, checked_name(name), _scan(request, services))
    return _delete_page(request, render, radius)


@router.post("/roles/{name}/delete", response_class=HTMLResponse)
def delete(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    radius = changes.blast_radius(services, checked_name(name))
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
    run = _run(services, ctx, changes.delete_plan(services, radius), DELETE_WORKERS)
    if run is None:
        return redirect_after_post(request, f"/roles?deleted={role.name}")
    # A step failed: show what was done and what was not; confirming again continues.
    try:
        left = changes.blast_radius(services, role.name, _scan(request, services))
    except NotFound:
        return _failed(request, render, role.name, run)
    return _delete_page(request, render, left, status=502, run=run)


# Shared: review and apply of the permission and tag changes --------------------------------


def _review(
    request: Request,
    render: Renderer,
    role: Any,
    action: str,
    fields: dict[str, Any],
    *,
    diff_lines: list[str] | None = None,
    rows: list[tuple[str, str, str]] | None = None,
    lists: list[tuple[str, list[str]]] | None = None,
    risk: RiskReview | None = None,
    notes: list[Any] | None = None,
    acknowledged: list[str] | None = None,
    gate_error: str = "",
) -> Response:
    """The review page: what changes, the policy findings (`risk`: those the change brings
    need a ticked box; `notes`: the typed document's other findings), then Apply changes."""
    context: dict[str, Any] = {
        "mode": "review",
        "role": role,
        "action": action,
        "fields": fields,
        "risk": risk,
        "notes": notes or [],
        "acknowledged": set(acknowledged or []),
        "gate_error": gate_error,
        "lists": lists or [],
    }
    if diff_lines is not None:
        context["diff"] = diff_lines
    if rows is not None:
        context["rows"] = rows
    return _page(request, render, context, 422 if gate_error else 200)


def _stale(state: dict[str, Any], base: str) -> bool:
    return changes.fingerprint(state) != base


# Managed policies -------------------------------------------------------------------------


def _policies_page(
    request: Request,
    services: Services,
    render: Renderer,
    name: str,
    *,
    q: str = "",
    kind: str = "all",
    page: int = 1,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    from app.wizard.policies import KINDS
    from app.wizard.service import wizard_for

    wizard = wizard_for(request.app.state, services)
    role = services.iam.get_role(checked_name(name))
    attached = services.iam.list_attached_role_policies(role.name)
    found = wizard.policies.search(q[:128], kind if kind in KINDS else "all", max(1, page))
    return _page(
        request,
        render,
        {
            "mode": "policies",
            "role": role,
            "attached": attached,
            "attached_arns": {p.arn for p in attached},
            "found": found,
            "q": q[:128],
            "kind": kind,
            "kinds": KINDS,
            "quota": wizard.quotas().attached_policies,
            "base": changes.fingerprint(changes.attached_state(attached)),
            "errors": errors or {},
        },
        status,
    )


@router.get("/roles/{name}/policies/edit", response_class=HTMLResponse)
def edit_policies(
    request: Request,
    name: str,
    services: ServicesDep,
    render: RendererDep,
    q: str = "",
    kind: str = "all",
    page: int = 1,
) -> Response:
    return _policies_page(request, services, render, name, q=q, kind=kind, page=page)


def _policies_change(
    request: Request, services: Services, form: Any, name: str
) -> tuple[Any, list[Any], list[str], list[str], dict[str, str]]:
    from app.wizard.service import wizard_for

    wizard = wizard_for(request.app.state, services)
    role = services.iam.get_role(checked_name(name))
    attached = services.iam.list_attached_role_policies(role.name)
    now = {p.arn for p in attached}
    attach = [a for a in dict.fromkeys(form.all("attach")) if a not in now][:50]
    detach = [d for d in dict.fromkeys(form.all("detach")) if d in now]
    errors: dict[str, str] = {}
    unknown = [a for a in attach if wizard.lookup_policy(a) is None]
    if unknown:
        errors["attach"] = f"No such managed policy: {', '.join(unknown[:3])}."
    quota = wizard.quotas(fresh=True).attached_policies
    total = len(now) - len(detach) + len(attach)
    if total > quota:
        errors["attach"] = (
            f"{total} managed policies would be attached; the account allows {quota} per role "
            "(GetAccountSummary). Detach some first."
        )
    if not attach and not detach:
        errors["attach"] = "Choose policies to attach or detach."
    return role, attached, attach, detach, errors


@router.post("/roles/{name}/policies/review", response_class=HTMLResponse)
def review_policies(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    role, _attached, attach, detach, errors = _policies_change(request, services, form, name)
    if errors:
        return _policies_page(request, services, render, name, errors=errors, status=422)
    return _policies_review(request, render, services, role, attach, detach, form)


def _policies_review(
    request: Request,
    render: Renderer,
    services: Services,
    role: Any,
    attach: list[str],
    detach: list[str],
    form: Any,
    risk: RiskReview | None = None,
    gate_error: str = "",
) -> Response:
    return _review(
        request,
        render,
        role,
        f"/roles/{role.name}/policies/apply",
        {"attach": attach, "detach": detach, "base": form.get("base")},
        lists=[("Attach", attach), ("Detach", detach)],
        risk=risk
        or checks.permissions_review(
            services, role.name, role.permissions_boundary_arn, attach=attach, detach=detach
        ),
        acknowledged=form.all("acknowledge"),
        gate_error=gate_error,
    )


@router.post("/roles/{name}/policies/apply", response_class=HTMLResponse)
def apply_policies(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    role, attached, attach, detach, errors = _policies_change(request, services, form, name)
    state = changes.attached_state(attached)
    if _stale(state, form.get("base")):
        wanted = sorted((set(state["attached"]) | set(attach)) - set(detach))
        return _conflict(
            request,
            render,
            role,
            "attached managed policies",
            json.dumps(state["attached"], indent=2),
            json.dumps(wanted, indent=2),
        )
    if errors:
        return _policies_page(request, services, render, name, errors=errors, status=422)
    change = Reviewed(
        role.name,
        changes.policies_plan(services, role, attach, detach),
        checks.permissions_review(
            services, role.name, role.permissions_boundary_arn, attach=attach, detach=detach
        ),
        lambda risk, message: _policies_review(
            request, render, services, role, attach, detach, form, risk, message
        ),
        "permissions",
    )
    return _gated_apply(request, render, services, ctx, form, change)


# Inline policies --------------------------------------------------------------------------


def _inline_page(
    request: Request,
    render: Renderer,
    role: Any,
    policy_name: str,
    original: str,
    text: str,
    base: str,
    errors: list[Any],
    name_error: str = "",
    status: int = 200,
) -> Response:
    return _page(
        request,
        render,
        {
            "mode": "inline",
            "role": role,
            "policy_name": policy_name,
            "original": original,
            "text": text,
            "base": base,
            "errors": errors,
            "name_error": name_error,
        },
        status,
    )


@router.get("/roles/{name}/inline/edit", response_class=HTMLResponse)
def edit_inline(
    request: Request, name: str, services: ServicesDep, render: RendererDep, policy: str = ""
) -> Response:
    role = services.iam.get_role(checked_name(name))
    state = changes.inline_state(services, role.name)
    current = state["inline"].get(policy[:128])
    text = changes.pretty(current) if current is not None else INLINE_TEMPLATE
    original = policy[:128] if current is not None else ""
    return _inline_page(
        request, render, role, original, original, text, changes.fingerprint(state), []
    )


INLINE_TEMPLATE = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [], "Resource": []}]},
    indent=2,
)


def _inline_checked(
    request: Request, services: Services, render: Renderer, name: str, form: Any
) -> tuple[Any, dict[str, Any], Any, Response | None]:
    from app.wizard import rules
    from app.wizard.service import wizard_for

    role = services.iam.get_role(checked_name(name))
    state = changes.inline_state(services, role.name)
    policy_name, original = form.get("policy_name").strip(), form.get("original")
    text = form.get("document")
    analysis = analyse(text, "identity", services.identity.account)
    name_error = rules.INLINE_POLICY_NAME.check(policy_name) or ""
    if not name_error and policy_name != original and policy_name in state["inline"]:
        name_error = f"The role already has an inline policy named {policy_name}."
    if not name_error and policy_name == changes.REVOKE_POLICY:
        name_error = "That name is kept for Revoke active sessions."
    if analysis.ok and not name_error:
        others = {k: v for k, v in state["inline"].items() if k not in (original, policy_name)}
        size = changes.inline_size({**others, policy_name: analysis.document})
        quota = wizard_for(request.app.state, services).quotas().inline_policy_size
        if size > quota:
            name_error = (
                f"The role's inline policies would total {size:,} characters; the limit is "
                f"{quota:,} for all inline policies of a role together (spaces not counted)."
            )
    if not analysis.ok or name_error:
        page = _inline_page(
            request,
            render,
            role,
            policy_name,
            original,
            text,
            form.get("base"),
            analysis.errors,
            name_error,
            422,
        )
        return role, state, analysis, page
    return role, state, analysis, None


@router.post("/roles/{name}/inline/review", response_class=HTMLResponse)
def review_inline(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    role, state, analysis, refused = _inline_checked(request, services, render, name, form)
    if refused is not None:
        return refused
    return _inline_review(request, render, services, role, state, analysis, form)


def _inline_risk(services: Services, role: Any, analysis: Any, form: Any) -> RiskReview:
    original, policy_name = form.get("original"), form.get("policy_name").strip()
    inline: dict[str, Any] = {policy_name: analysis.document}
    if original and original != policy_name:  # renamed: the old one is deleted after
        inline[original] = None
    return checks.permissions_review(
        services, role.name, role.permissions_boundary_arn, inline=inline
    )


def _inline_review(
    request: Request,
    render: Renderer,
    services: Services,
    role: Any,
    state: dict[str, Any],
    analysis: Any,
    form: Any,
    risk: RiskReview | None = None,
    gate_error: str = "",
) -> Response:
    old = state["inline"].get(form.get("original"))
    before = changes.pretty(old) if old is not None else ""
    return _review(
        request,
        render,
        role,
        f"/roles/{role.name}/inline/apply",
        {k: form.get(k) for k in ("policy_name", "original", "document", "base")},
        diff_lines=diff(before, changes.pretty(analysis.document)),
        # The document's own findings other than its risks (those are in `risk`, per policy).
        notes=[f for f in analysis.findings if f.level in ("warning", "suggestion")],
        risk=risk or _inline_risk(services, role, analysis, form),
        acknowledged=form.all("acknowledge"),
        gate_error=gate_error,
    )


@router.post("/roles/{name}/inline/apply", response_class=HTMLResponse)
def apply_inline(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    role, state, analysis, refused = _inline_checked(request, services, render, name, form)
    if _stale(state, form.get("base")):
        return _conflict(
            request,
            render,
            role,
            "inline policies",
            json.dumps(state["inline"], indent=2),
            form.get("document"),
        )
    if refused is not None:
        return refused
    original, policy_name = form.get("original"), form.get("policy_name").strip()
    old = state["inline"].get(original) if original == policy_name else None
    renamed = bool(original) and original != policy_name

    def drop_original(next_ctx: AuditContext) -> progress.Progress | None:
        old_doc = state["inline"][original]
        return _run(
            services, next_ctx, changes.delete_inline_plan(services, role, original, old_doc)
        )

    change = Reviewed(
        role.name,
        changes.put_inline_plan(services, role, policy_name, analysis.document, old),
        _inline_risk(services, role, analysis, form),
        lambda risk, message: _inline_review(
            request, render, services, role, state, analysis, form, risk, message
        ),
        "permissions",
        then=drop_original if renamed else None,
    )
    return _gated_apply(request, render, services, ctx, form, change)


@router.get("/roles/{name}/inline/delete", response_class=HTMLResponse)
def review_inline_delete(
    request: Request, name: str, services: ServicesDep, render: RendererDep, policy: str = ""
) -> Response:
    role = services.iam.get_role(checked_name(name))
    state = changes.inline_state(services, role.name)
    if policy not in state["inline"]:
        raise HTTPException(404, f"{role.name} has no inline policy {policy[:128]}.")
    return _review(
        request,
        render,
        role,
        f"/roles/{role.name}/inline/delete",
        {"policy_name": policy, "base": changes.fingerprint(state)},
        diff_lines=diff(changes.pretty(state["inline"][policy]), ""),
        lists=[("Delete inline policy", [policy])],
    )


@router.post("/roles/{name}/inline/delete", response_class=HTMLResponse)
def apply_inline_delete(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    role = services.iam.get_role(checked_name(name))
    state = changes.inline_state(services, role.name)
    policy = form.get("policy_name")
    if _stale(state, form.get("base")) or policy not in state["inline"]:
        return _conflict(
            request, render, role, "inline policies", json.dumps(state["inline"], indent=2), ""
        )
    plan = changes.delete_inline_plan(services, role, policy, state["inline"][policy])
    run = _run(services, ctx, plan)
    return _outcome(request, render, role.name, run, "permissions", ctx.operation_id)


# Permissions boundary ---------------------------------------------------------------------


@router.get("/roles/{name}/boundary/edit", response_class=HTMLResponse)
def edit_boundary(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    role = services.iam.get_role(checked_name(name))
    return _boundary_page(request, render, role, role.permissions_boundary_arn or "", "")


def _boundary_page(
    request: Request, render: Renderer, role: Any, value: str, error: str, status: int = 200
) -> Response:
    return _page(
        request,
        render,
        {
            "mode": "boundary",
            "role": role,
            "value": value,
            "error": error,
            "base": changes.fingerprint(changes.boundary_state(role)),
        },
        status,
    )


def _boundary_wanted(request: Request, services: Services, form: Any) -> tuple[str | None, str]:
    from app.wizard.service import wizard_for

    if form.get("remove") == "yes":
        return None, ""
    arn = form.get("boundary_arn").strip()
    if wizard_for(request.app.state, services).lookup_policy(arn) is None:
        return None, "Enter the ARN of an existing managed policy (see the policy list)."
    return arn, ""


@router.post("/roles/{name}/boundary/review", response_class=HTMLResponse)
def review_boundary(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    role = services.iam.get_role(checked_name(name))
    arn, error = _boundary_wanted(request, services, form)
    if error:
        return _boundary_page(request, render, role, form.get("boundary_arn"), error, 422)
    return _boundary_review(request, render, services, role, arn, form)


def _boundary_review(
    request: Request,
    render: Renderer,
    services: Services,
    role: Any,
    arn: str | None,
    form: Any,
    risk: RiskReview | None = None,
    gate_error: str = "",
) -> Response:
    return _review(
        request,
        render,
        role,
        f"/roles/{role.name}/boundary/apply",
        {
            "boundary_arn": arn or "",
            "remove": "yes" if arn is None else "",
            "base": form.get("base"),
        },
        rows=[
            ("Permissions boundary", role.permissions_boundary_arn or "Not set", arn or "Not set")
        ],
        risk=risk
        or checks.permissions_review(
            services, role.name, role.permissions_boundary_arn, new_boundary=arn
        ),
        acknowledged=form.all("acknowledge"),
        gate_error=gate_error,
    )


@router.post("/roles/{name}/boundary/apply", response_class=HTMLResponse)
def apply_boundary(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    role = services.iam.get_role(checked_name(name))
    arn, error = _boundary_wanted(request, services, form)
    if _stale(changes.boundary_state(role), form.get("base")):
        return _conflict(
            request,
            render,
            role,
            "permissions boundary",
            role.permissions_boundary_arn or "Not set",
            arn or "Not set",
        )
    if error:
        return _boundary_page(request, render, role, form.get("boundary_arn"), error, 422)
    change = Reviewed(
        role.name,
        changes.boundary_plan(services, role, arn),
        checks.permissions_review(
            services, role.name, role.permissions_boundary_arn, new_boundary=arn
        ),
        lambda risk, message: _boundary_review(
            request, render, services, role, arn, form, risk, message
        ),
        "summary",
    )
    return _gated_apply(request, render, services, ctx, form, change)


# Tags -------------------------------------------------------------------------------------


def _tag_rows(form: Any) -> list[tuple[str, str]]:
    from app.wizard.rules import MAX_TAGS

    keys, values = form.all("tag_key"), form.all("tag_value")
    rows = [(k.strip(), v) for k, v in zip(keys, values, strict=False)][: MAX_TAGS + 10]
    return [(k, v) for k, v in rows if k or v]


def _tags_page(
    request: Request,
    render: Renderer,
    role: Any,
    rows: list[tuple[str, str]],
    errors: dict[int, str],
    error: str,
    base: str,
    status: int = 200,
    more: int = 1,
) -> Response:
    from app.wizard.rules import MAX_TAGS

    shown = rows + [("", "")] * max(0, min(more, MAX_TAGS - len(rows)))
    return _page(
        request,
        render,
        {
            "mode": "tags",
            "role": role,
            "rows": shown,
            "tag_errors": errors,
            "error": error,
            "base": base,
            "max_tags": MAX_TAGS,
            "more": more,
        },
        status,
    )


@router.get("/roles/{name}/tags/edit", response_class=HTMLResponse)
def edit_tags(
    request: Request, name: str, services: ServicesDep, render: RendererDep, more: int = 1
) -> Response:
    role = services.iam.get_role(checked_name(name))
    rows = [(t.key, t.value) for t in role.tags]
    base = changes.fingerprint(changes.tags_state(role))
    return _tags_page(request, render, role, rows, {}, "", base, more=max(1, min(more, 50)))


def _tags_checked(form: Any) -> tuple[list[tuple[str, str]], dict[int, str], str]:
    from app.wizard.rules import MAX_TAGS, check_tags

    rows = _tag_rows(form)
    errors = check_tags(rows)
    error = f"A role may have at most {MAX_TAGS} tags." if len(rows) > MAX_TAGS else ""
    return rows, errors, error


@router.post("/roles/{name}/tags/review", response_class=HTMLResponse)
def review_tags(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    from app.aws.types import Tag

    role = services.iam.get_role(checked_name(name))
    rows, errors, error = _tags_checked(form)
    if form.get("nav") == "add_tag" or errors or error:
        more = 2 if form.get("nav") == "add_tag" else 1
        status = 200 if form.get("nav") == "add_tag" and not error else 422
        if form.get("nav") == "add_tag":
            errors = {}
        return _tags_page(
            request, render, role, rows, errors, error, form.get("base"), status, more
        )
    tag_diff = changes.tag_diff(role.tags, [Tag(k, v) for k, v in rows])
    return _review(
        request,
        render,
        role,
        f"/roles/{role.name}/tags/apply",
        {
            "tag_key": [k for k, _ in rows],
            "tag_value": [v for _, v in rows],
            "base": form.get("base"),
        },
        lists=[
            ("Add", [f"{t.key} = {t.value}" for t in tag_diff.added]),
            ("Change", [f"{a.key}: {a.value} → {b.value}" for a, b in tag_diff.changed]),
            ("Remove", [f"{t.key} = {t.value}" for t in tag_diff.removed]),
        ],
    )


@router.post("/roles/{name}/tags/apply", response_class=HTMLResponse)
def apply_tags(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    from app.aws.types import Tag

    role = services.iam.get_role(checked_name(name))
    rows, errors, error = _tags_checked(form)
    state = changes.tags_state(role)
    if _stale(state, form.get("base")):
        return _conflict(
            request,
            render,
            role,
            "tags",
            json.dumps(dict(state["tags"]), indent=2),
            json.dumps(dict(rows), indent=2),
        )
    if errors or error:
        return _tags_page(request, render, role, rows, errors, error, form.get("base"), 422)
    tag_diff = changes.tag_diff(role.tags, [Tag(k, v) for k, v in rows])
    if tag_diff.empty:
        return redirect_after_post(request, f"/roles/{role.name}#tags")
    run = _run(services, ctx, changes.tags_plan(services, role, tag_diff))
    return _outcome(request, render, role.name, run, "tags", ctx.operation_id)


# Bulk delete from the roles list ----------------------------------------------------------


def _bulk_names(form: Any) -> list[str]:
    return [checked_name(n) for n in dict.fromkeys(form.all("name")) if n][
        : changes.MAX_BULK_DELETE + 1
    ]


def _bulk_page(
    request: Request,
    services: Services,
    render: Renderer,
    names: list[str],
    error: str = "",
    status: int = 200,
) -> Response:
    radii, missing = [], []
    scan = _scan(request, services)
    for n in names[: changes.MAX_BULK_DELETE]:
        try:
            radii.append(changes.blast_radius(services, n, scan))
        except NotFound:
            missing.append(n)
    deletable = [r for r in radii if not changes.is_service_linked(r.role)]
    refused = [
        (r.role.name, changes.service_linked_refusal(r.role))
        for r in radii
        if changes.is_service_linked(r.role)
    ]
    if len(names) > changes.MAX_BULK_DELETE:
        error = error or f"Choose at most {changes.MAX_BULK_DELETE} roles at once."
    return _page(
        request,
        render,
        {
            "mode": "bulk",
            "role": None,
            "role_name": "",
            "radii": deletable,
            "refused": refused,
            "missing": missing,
            "error": error,
            "too_many": len(names) > changes.MAX_BULK_DELETE,
        },
        status,
    )


@router.post("/roles/bulk-delete/review", response_class=HTMLResponse)
def review_bulk_delete(
    request: Request, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    names = _bulk_names(form)
    if not names:
        return _bulk_page(request, services, render, [], "Choose the roles to delete.", 422)
    return _bulk_page(request, services, render, names)


@router.post("/roles/bulk-delete", response_class=HTMLResponse)
def apply_bulk_delete(
    request: Request,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    names = _bulk_names(form)
    if not names or len(names) > changes.MAX_BULK_DELETE:
        return _bulk_page(request, services, render, names, status=422)
    if form.get("confirm") != "delete":
        return _bulk_page(request, services, render, names, "Type delete to confirm.", 422)
    radii = [changes.blast_radius(services, n) for n in names]
    radii = [r for r in radii if not changes.is_service_linked(r.role)]
    plan = changes.bulk_delete_plan(services, radii)
    engine = Engine(services, workers=DELETE_WORKERS)
    engine.record_start(ctx, plan)
    services.runs.start(ctx.operation_id, lambda: engine.run(ctx, plan), "delete-roles")
    services.runs.wait(ctx.operation_id, 0.3)  # then its progress page
    return redirect_after_post(request, f"/operations/{ctx.operation_id}")
