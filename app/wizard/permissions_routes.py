"""Step 2 of the wizard: managed policies (search, type filter, view a document, choose
several), an optional permissions boundary and an optional inline policy.

The choice lives in the draft, so it survives searches and paging. Search is a GET form
(htmx swaps only the results as you type); choosing is one POST form whose buttons say what
they do ("Add", "Remove", "Use as boundary"), followed by a redirect back to the same search.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote_plus, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.aws.types import ManagedPolicy
from app.policy import Finding, HeldPolicy, PolicyKind, analyse, role_risks
from app.policy.access_analyzer import merge
from app.policy.risk import LIVE_TIMEOUT
from app.services import Services
from app.web.deps import RendererDep, ServicesDep, get_services
from app.web.params import POLICY_ARN_MAX, POLICY_ARN_PATTERN, ascii_int
from app.web.templating import Renderer, is_htmx, is_partial, redirect_after_post
from app.wizard import catalog, rules
from app.wizard.drafts import Draft
from app.wizard.policies import KINDS
from app.wizard.service import Wizard
from app.wizard.steps import check_permissions, is_ec2_service
from app.wizard.web import (
    STEP_PAGES,
    FormDep,
    WizardDep,
    done_redirect,
    edit_own_step,
    go_to_step,
    load_draft,
    step_url,
)

router = APIRouter(prefix="/create-role")


def _search_url(draft_id: str, q: str, kind: str, page: int, **extra: str) -> str:
    params = {"q": q, "kind": kind if kind != "all" else "", "page": page if page > 1 else ""}
    query = urlencode({k: v for k, v in {**params, **extra}.items() if v not in ("", None)})
    return step_url(draft_id, "permissions") + (f"?{query}" if query else "")


# ARNs quoted for a query string, remembered: every step-2 render quotes the 20 rows' ARNs
# again, and the policy list is the same few thousand ARNs (issue 13).
_quoted_arn = functools.lru_cache(maxsize=8192)(quote_plus)


def _view_url(base: str) -> Callable[[str], str]:
    prefix = base + ("&" if "?" in base else "?") + "view="
    return lambda arn: prefix + _quoted_arn(arn)


def _document_text(services: Services, arn: str, wizard: Wizard) -> tuple[Any, str]:
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
        # A row's "view" link: the search's own address plus the ARN, built once per page
        # rather than urlencoding the whole search again for each of the 20 rows.
        "view_url": _view_url(_search_url(draft.id, q, kind, page)),
        "quoted_arn": _quoted_arn,
        "rules": rules,
        "inline_findings": _inline_findings(values, wizard),
        # A callable: computed only when the chosen-policies section is rendered (not for
        # each search-as-you-type fragment).
        "chosen_findings": lambda: _chosen_findings(wizard, selected, boundary_arn),
    }
    return render.page(request, "wizard/permissions.html", context, block=block, status_code=status)


# Findings of a set of chosen policies, remembered: every "Add" re-renders the chosen section,
# and the set seldom changes between two renders (Next, Remove then Add back, the no-JS page
# after its redirect). The key is each policy's ARN and the identity of its document as the
# document cache holds it, and the entry keeps those documents, so a policy recreated under
# the same ARN and version (a new document object) is a new key. Incomplete scans
# (RISK_SCAN_PENDING) are not kept.
_CHOSEN_MEMO: OrderedDict[tuple[Any, ...], tuple[list[Any], list[Finding]]] = OrderedDict()
_CHOSEN_MEMO_SIZE = 256
_CHOSEN_MEMO_LOCK = threading.Lock()


def _chosen_findings(
    wizard: Wizard, selected: list[tuple[str, ManagedPolicy | None]], boundary_arn: str
) -> list[Finding]:
    """Risk findings of the chosen managed policies together, limited by the boundary, and
    the boundary's own grammar and catalogue findings."""
    held = [
        HeldPolicy(p.name, doc)
        for _, p in selected
        if p is not None and (doc := wizard.managed_document(p)) is not None
    ]
    boundary_policy = wizard.policies.get(boundary_arn) if boundary_arn else None
    boundary_doc = wizard.managed_document(boundary_policy) if boundary_policy else None
    boundary = (
        HeldPolicy(boundary_policy.name, boundary_doc) if boundary_policy and boundary_doc else None
    )
    documents = [h.document for h in held] + ([boundary.document] if boundary else [])
    key = (
        tuple((h.name, id(h.document)) for h in held),
        (boundary.name, id(boundary.document)) if boundary else None,
    )
    with _CHOSEN_MEMO_LOCK:
        remembered = _CHOSEN_MEMO.get(key)
        if remembered is not None and all(
            a is b for a, b in zip(remembered[0], documents, strict=True)
        ):
            _CHOSEN_MEMO.move_to_end(key)
            return list(remembered[1])
    found = role_risks(held, boundary, timeout=LIVE_TIMEOUT) if held else []
    if boundary is not None:
        checked = analyse(json.dumps(boundary.document, indent=4), PolicyKind.BOUNDARY)
        found += [f.about(boundary.name) for f in checked.findings]
    if not any(f.code == "RISK_SCAN_PENDING" for f in found):
        with _CHOSEN_MEMO_LOCK:
            _CHOSEN_MEMO[key] = (documents, list(found))
            while len(_CHOSEN_MEMO) > _CHOSEN_MEMO_SIZE:
                _CHOSEN_MEMO.popitem(last=False)
    return found


def _inline_findings(values: dict[str, Any], wizard: Wizard) -> list[Finding]:
    """The inline policy's findings as saved, so they show without JavaScript too."""
    text = str(values.get("inline_policy") or "")
    if not text.strip():
        return []
    analysis = analyse(text, PolicyKind.IDENTITY)
    if analysis.document is None:
        return analysis.findings
    return merge(analysis.findings, wizard.remote_findings(text, PolicyKind.IDENTITY))


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
    arn: Annotated[str, Query(max_length=POLICY_ARN_MAX, pattern=POLICY_ARN_PATTERN)],
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

    # Looked up before the write transaction: a cold policy list is read from AWS, which must
    # not happen while the draft's row (on SQLite, the database) is locked.
    add = form.get("add")
    add = add if add and wizard.policies.get(add) else ""
    new_boundary = form.get("boundary")
    new_boundary = new_boundary if new_boundary and wizard.policies.get(new_boundary) else ""

    def values_for(stored: Draft) -> dict[str, Any]:
        """The step as stored, changed by this submit (Add, Remove, boundary, inline)."""
        saved = stored.step("permissions")
        chosen = [a for a in saved.get("policies", []) if isinstance(a, str)]
        if add and add not in chosen:
            chosen.append(add)
        if remove := form.get("remove"):
            chosen = [a for a in chosen if a != remove]
        boundary = new_boundary or str(saved.get("boundary") or "")
        if form.get("clear_boundary"):
            boundary = ""
        return {
            "policies": chosen,
            "boundary": boundary,
            "inline_name": form.get("inline_name").strip(),
            "inline_policy": form.get("inline_policy"),
        }

    draft = edit_own_step(wizard, request, draft_id, "permissions", values_for)
    if not draft.editable:  # another tab started creating the role meanwhile
        return redirect_after_post(request, step_url(draft.id, "done"))
    values = draft.step("permissions")
    if form.get("reload"):
        wizard.policies.reload()
    q, kind = form.get("q")[:128], form.get("kind", "all")
    kind = kind if kind in KINDS else "all"
    page = min(ascii_int(form.get("page")) or 1, 10_000)
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
