"""Step 2 of the wizard: managed policies (search, type filter, view a document, choose
several), an optional permissions boundary and an optional inline policy.

The choice lives in the draft, so it survives searches and paging. Search is a GET form
(htmx swaps only the results as you type); choosing is one POST form whose buttons say what
they do ("Add", "Remove", "Use as boundary"), followed by a redirect back to the same search.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.services import Services
from app.web.deps import RendererDep, ServicesDep, get_services
from app.web.templating import Renderer, is_htmx, is_partial, redirect_after_post
from app.wizard import catalog, rules
from app.wizard.policies import KINDS
from app.wizard.service import Wizard
from app.wizard.steps import check_permissions, is_ec2_service
from app.wizard.web import (
    STEP_PAGES,
    FormDep,
    WizardDep,
    done_redirect,
    go_to_step,
    load_draft,
    step_url,
)

router = APIRouter(prefix="/create-role")


def _search_url(draft_id: str, q: str, kind: str, page: int, **extra: str) -> str:
    params = {"q": q, "kind": kind if kind != "all" else "", "page": page if page > 1 else ""}
    query = urlencode({k: v for k, v in {**params, **extra}.items() if v not in ("", None)})
    return step_url(draft_id, "permissions") + (f"?{query}" if query else "")


def _document_text(services: Services, arn: str, wizard: Wizard) -> tuple[Any, str]:
    import json

    policy = wizard.policies.get(arn)
    if policy is None:
        return None, ""
    document = services.iam.get_policy_document(arn, policy.default_version_id)
    return policy, document if isinstance(document, str) else json.dumps(document, indent=4)


def _page(
    request: Request,
    render: Renderer,
    services: Services,
    wizard: Wizard,
    draft: Any,
    *,
    q: str,
    kind: str,
    page: int,
    view: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
    values: dict[str, Any] | None = None,
    block: str = "policy_results",
) -> Response:
    values = values if values is not None else draft.step("permissions")
    selected_arns = [a for a in values.get("policies", []) if isinstance(a, str)]
    selected = [(a, wizard.policies.get(a)) for a in selected_arns]
    boundary_arn = str(values.get("boundary") or "")
    trust_values = draft.step("trust")
    suggestions = []
    if trust_values.get("entity_type") == "service":
        principal = str(trust_values.get("service", "")).strip()
        for arn in catalog.suggested_policies(principal, str(trust_values.get("use_case", ""))):
            policy = wizard.policies.get(arn)
            if policy is not None and arn not in selected_arns:
                suggestions.append(policy)
    viewed, document = _document_text(services, view, wizard) if view else (None, "")
    context = {
        "draft": draft,
        "step": "permissions",
        "result": wizard.policies.search(q, kind, page),
        "q": q,
        "kind": kind,
        "kinds": KINDS,
        "selected": selected,
        "selected_arns": set(selected_arns),
        "boundary": wizard.policies.get(boundary_arn) if boundary_arn else None,
        "boundary_arn": boundary_arn,
        "inline_name": values.get("inline_name", ""),
        "inline_policy": values.get("inline_policy", ""),
        "suggestions": suggestions,
        "is_ec2": is_ec2_service(trust_values),
        "quota": wizard.quotas().attached_policies,
        "errors": errors or {},
        "viewed": viewed,
        "document": document,
        "search_url": lambda **c: _search_url(
            draft.id, **{"q": q, "kind": kind, "page": page, **c}
        ),
        "rules": rules,
    }
    return render.page(request, "wizard/permissions.html", context, block=block, status_code=status)


def _saved_page(request: Request, wizard: Wizard, draft: Any) -> Response:
    """Step 2 as it was left (a fresh search), for a step's answer in one response."""
    services = get_services(request)
    render: Renderer = request.app.state.renderer
    return _page(
        request, render, services, wizard, draft, q="", kind="all", page=1, block="wizard_step"
    )


STEP_PAGES["permissions"] = _saved_page


@router.get("/{draft_id}/permissions", response_class=HTMLResponse)
def permissions_step(
    request: Request,
    draft_id: str,
    wizard: WizardDep,
    render: RendererDep,
    services: ServicesDep,
    q: Annotated[str, Query(max_length=128)] = "",
    kind: str = "all",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    view: Annotated[str, Query(max_length=2048)] = "",
) -> Response:
    draft = load_draft(wizard, request, draft_id)
    if (redirect := done_redirect(draft)) is not None:
        return redirect
    kind = kind if kind in KINDS else "all"
    return _page(request, render, services, wizard, draft, q=q, kind=kind, page=page, view=view)


@router.get("/{draft_id}/permissions/document", response_class=HTMLResponse)
def policy_document(
    request: Request,
    draft_id: str,
    wizard: WizardDep,
    render: RendererDep,
    services: ServicesDep,
    arn: Annotated[str, Query(min_length=20, max_length=2048)],
) -> Response:
    """A policy's document inside step 2 (htmx); without htmx, the step page showing it."""
    draft = load_draft(wizard, request, draft_id)
    if not is_htmx(request):
        return Response(
            status_code=303, headers={"Location": _search_url(draft.id, "", "all", 1, view=arn)}
        )
    policy, document = _document_text(services, arn, wizard)
    return render.page(
        request,
        "wizard/_policy_document.html",
        {"draft": draft, "viewed": policy, "document": document},
    )


@router.post("/{draft_id}/permissions", response_class=HTMLResponse)
def save_permissions(
    request: Request,
    draft_id: str,
    form: FormDep,
    wizard: WizardDep,
    render: RendererDep,
    services: ServicesDep,
) -> Response:
    draft = load_draft(wizard, request, draft_id)
    if not draft.editable:
        return redirect_after_post(request, step_url(draft.id, "done"))
    saved = draft.step("permissions")
    chosen = [a for a in saved.get("policies", []) if isinstance(a, str)]
    if (add := form.get("add")) and add not in chosen and wizard.policies.get(add):
        chosen.append(add)
    if remove := form.get("remove"):
        chosen = [a for a in chosen if a != remove]
    boundary = str(saved.get("boundary") or "")
    if (new_boundary := form.get("boundary")) and wizard.policies.get(new_boundary):
        boundary = new_boundary
    if form.get("clear_boundary"):
        boundary = ""
    values = {
        "policies": chosen,
        "boundary": boundary,
        "inline_name": form.get("inline_name").strip(),
        "inline_policy": form.get("inline_policy"),
    }
    saved_draft = wizard.drafts.save_step(draft.id, "permissions", values)
    if saved_draft is None:  # another tab started creating the role meanwhile
        return redirect_after_post(request, step_url(draft.id, "done"))
    draft = saved_draft
    if form.get("reload"):
        wizard.policies.reload()
    q, kind = form.get("q")[:128], form.get("kind", "all")
    kind = kind if kind in KINDS else "all"
    page = int(form.get("page")) if form.get("page").isdigit() else 1
    nav = form.get("nav")
    if nav == "previous":
        return go_to_step(request, wizard, draft, "trust")
    if nav == "next":
        result = check_permissions(values, wizard.policies.get, wizard.quotas())
        if result.errors:
            return _page(
                request,
                render,
                services,
                wizard,
                draft,
                q=q,
                kind=kind,
                page=page,
                errors=result.errors,
                status=422,
                block="wizard_step",
            )
        return go_to_step(request, wizard, draft, "review")
    if is_partial(request):  # htmx "Add"/"Remove": swap the form's body, no redirect
        return _page(
            request,
            render,
            services,
            wizard,
            draft,
            q=q,
            kind=kind,
            page=page,
            block="permissions_body",
        )
    return redirect_after_post(request, _search_url(draft.id, q, kind, page) + "#chosen")
