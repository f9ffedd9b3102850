"""The create-role wizard's pages: start, step 1 (trusted entity), step 3 (name, review),
create and done. Step 2 is in `permissions_routes`.

Each step has its own URL and saves into the draft; plain forms with post/redirect/get work
without JavaScript, and htmx adds the live trust-policy preview.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts.urls import in_account
from app.operations import progress
from app.policy import Analysis, PolicyKind, analyse
from app.policy.access_analyzer import merge
from app.web.check_progress import wait_for_news, wants_wait
from app.web.deps import AuditContextDep, RendererDep, ServicesDep, actor_name
from app.web.params import ascii_int
from app.web.templating import Renderer, is_partial, redirect_after_post, targets
from app.wizard import picker, rules, trust, trust_form
from app.wizard.create import CreateOutcome, RoleCreator, start_preflight
from app.wizard.drafts import Draft
from app.wizard.review import cli_commands, policy_review
from app.wizard.service import Wizard
from app.wizard.steps import DraftCheck
from app.wizard.trust_form import TRUST_DEFAULTS, trust_errors, trust_form_context, trust_values
from app.wizard.web import (
    NEW,
    STEP_PAGES,
    FormDep,
    FormValues,
    Unsaved,
    WizardDep,
    done_redirect,
    go_to_step,
    load_draft,
    step_url,
)

router = APIRouter(prefix="/create-role")

ENTITY_LABELS = {key: label for key, label, _ in trust.ENTITY_TYPES}  # "service" -> "AWS service"
MAX_TAG_ROWS = 50
STALE_AFTER = timedelta(minutes=10)
# How long the create request waits for its run before showing the progress page instead:
# a quick run (the sandbox, a small role) lands on its result, a slow one (real AWS, retries)
# shows its calls at once instead of a button that seems to do nothing (issue 13).
CREATE_WAIT_SECONDS = 0.3


@router.get("", response_class=HTMLResponse)
def start_page(request: Request, wizard: WizardDep, render: RendererDep) -> Response:
    """Unfinished drafts to resume; with none, step 1 itself (issue 13: "Create role" in the
    navigation goes straight to step 1 when there is nothing to resume)."""
    from app.main import may_change  # the layout's own rule; imported late (app.main imports us)

    wizard.drafts.purge_expired_if_due()
    drafts = wizard.drafts.resumable(actor_name(request))
    discarded = request.query_params.get("discarded") == "1"
    if drafts or discarded or not may_change(request):
        context = {"drafts": drafts, "discarded": discarded, "entity_labels": ENTITY_LABELS}
        return render.page(request, "wizard/start.html", context)
    return _trust_page(request, render, wizard, Unsaved(), dict(TRUST_DEFAULTS), show_errors=False)


@router.post("")
def start_draft(request: Request) -> Response:
    """The old "Start a new role" form: step 1, with no draft until it is saved."""
    return redirect_after_post(request, step_url(NEW, "trust"))


@router.post("/{draft_id}/discard")
def discard_draft(request: Request, draft_id: str, form: FormDep, wizard: WizardDep) -> Response:
    """Delete an unfinished draft (a Discard button on every step and on the drafts list).
    The buttons send confirm=discard: a bare POST deletes nothing."""
    if form.get("confirm") != "discard":
        raise HTTPException(422, "Nothing was discarded: use a Discard button.")
    if draft_id != NEW:
        draft = load_draft(wizard, request, draft_id)
        if (redirect := done_redirect(draft)) is not None:
            return redirect  # being created or created: nothing to discard
        wizard.drafts.discard(draft.id, actor_name(request))
    return redirect_after_post(request, "/create-role?discarded=1")


# Step 1 -------------------------------------------------------------------------------------


def _trust_page(
    request: Request,
    render: Renderer,
    wizard: Wizard,
    draft: Draft | Unsaved,
    values: dict[str, str],
    *,
    show_errors: bool,
    status: int = 200,
    block: str | None = "wizard_step",
    query: str = "",
    oob: bool = False,
) -> Response:
    context = {
        "draft": draft,
        "step": "trust",
        **trust_form_context(
            wizard,
            values,
            show_errors=show_errors,
            picker_url=step_url(draft.id, "trust/picker"),
            check_url=step_url(draft.id, "check/trust"),
            query=query,
            oob=oob,
        ),
    }
    return render.page(request, "wizard/trust.html", context, block=block, status_code=status)


def _saved_trust_page(request: Request, wizard: Wizard, draft: Draft) -> Response:
    saved = draft.step("trust")
    values = {**TRUST_DEFAULTS, **saved}
    render: Renderer = request.app.state.renderer
    return _trust_page(request, render, wizard, draft, values, show_errors=bool(saved))


STEP_PAGES["trust"] = _saved_trust_page


def _step_one_draft(wizard: Wizard, request: Request, draft_id: str) -> Draft | Unsaved:
    return Unsaved() if draft_id == NEW else load_draft(wizard, request, draft_id)


@router.get("/{draft_id}/trust", response_class=HTMLResponse)
def trust_step(request: Request, draft_id: str, wizard: WizardDep, render: RendererDep) -> Response:
    if draft_id == NEW:
        values = dict(TRUST_DEFAULTS)
        return _trust_page(request, render, wizard, Unsaved(), values, show_errors=False)
    draft = load_draft(wizard, request, draft_id)
    if (redirect := done_redirect(draft)) is not None:
        return redirect
    return _saved_trust_page(request, wizard, draft)


@router.post("/{draft_id}/trust", response_class=HTMLResponse)
def save_trust(
    request: Request, draft_id: str, form: FormDep, wizard: WizardDep, render: RendererDep
) -> Response:
    """Save step 1. "Search services" and "Show use cases" (the picker without JavaScript)
    only show the step again; "Update preview" and "Next" save it, and a new role's draft is
    made here, when its step 1 is first saved without errors."""
    draft = _step_one_draft(wizard, request, draft_id)
    if isinstance(draft, Draft) and (redirect := done_redirect(draft)) is not None:
        return redirect
    values = trust_values(form)
    nav = form.get("nav")
    query = form.get("service_query")
    errors = trust_errors(trust_form.build(wizard, values), values)
    saving = nav in ("next", "preview")
    if isinstance(draft, Draft):
        saved = wizard.drafts.save_step(draft.id, "trust", values)
        if saved is None:  # another tab started creating the role meanwhile
            return redirect_after_post(request, step_url(draft.id, "done"))
        draft = saved
    elif saving and not errors:
        draft = wizard.drafts.create(actor_name(request), {"trust": values})
        if nav == "preview":  # the step again, now at its draft's own address
            return go_to_step(request, wizard, draft, "trust")
    if saving and errors:
        return _trust_page(
            request, render, wizard, draft, values, show_errors=True, status=422, query=query
        )
    if nav == "next" and isinstance(draft, Draft):
        return go_to_step(request, wizard, draft, "permissions")
    return _trust_page(request, render, wizard, draft, values, show_errors=saving, query=query)


@router.post("/{draft_id}/trust/preview", response_class=HTMLResponse)
def preview_trust(
    request: Request, draft_id: str, form: FormDep, wizard: WizardDep, render: RendererDep
) -> Response:
    """The live preview (htmx): the trust policy for the fields as they are, unsaved; errors
    of fields that have become valid are cleared out of band."""
    draft = _step_one_draft(wizard, request, draft_id)
    values = trust_values(form)
    return _trust_page(
        request, render, wizard, draft, values, show_errors=True, block="trust_preview", oob=True
    )


@router.post("/{draft_id}/check/trust", response_class=HTMLResponse)
def check_trust_policy(
    request: Request, draft_id: str, form: FormDep, wizard: WizardDep, render: RendererDep
) -> Response:
    """The live check of the custom trust policy (htmx, as the person types), unsaved.
    Without JavaScript the trust step shows the same findings when the form is sent."""
    text = form.get("custom_policy")
    analysis = analyse(
        text,
        PolicyKind.TRUST,
        account_id=wizard.services.identity.account,
        size_quota=wizard.quotas().trust_policy_size,
    )
    return _check_answer(
        request, draft_id, wizard, render, analysis, text, "custom-policy-findings"
    )


@router.post("/{draft_id}/check/inline", response_class=HTMLResponse)
def check_inline_policy(
    request: Request, draft_id: str, form: FormDep, wizard: WizardDep, render: RendererDep
) -> Response:
    """The live check of the inline policy (htmx), unsaved; step 2 shows the same findings
    without JavaScript when the form is sent."""
    text = form.get("inline_policy")
    analysis = analyse(text, PolicyKind.IDENTITY)
    return _check_answer(
        request, draft_id, wizard, render, analysis, text, "inline-policy-findings"
    )


def _check_answer(
    request: Request,
    draft_id: str,
    wizard: Wizard,
    render: Renderer,
    analysis: Analysis,
    text: str,
    target: str,
) -> Response:
    # Step 1 of a new role has no draft yet ("new"): the check saves nothing, so it needs none.
    draft = _step_one_draft(wizard, request, draft_id)
    findings = analysis.findings
    if analysis.document is not None:  # real AWS: IAM Access Analyzer's findings too
        kind = PolicyKind.TRUST if target == "custom-policy-findings" else PolicyKind.IDENTITY
        findings = merge(findings, wizard.remote_findings(text, kind))
    context = {"draft": draft, "findings": findings, "target": target}
    return render.page(request, "policy/_check.html", context)


PICKER_PARTS = ("service_list", "use_cases")


@router.post("/{draft_id}/trust/picker", response_class=HTMLResponse)
def service_picker(
    request: Request,
    draft_id: str,
    form: FormDep,
    wizard: WizardDep,
    render: RendererDep,
    part: str = "use_cases",
) -> Response:
    """The service picker's list (as the search box changes) or the chosen service's use
    cases (htmx); a plain request gets step 1."""
    draft = _step_one_draft(wizard, request, draft_id)
    if not is_partial(request) or part not in PICKER_PARTS:
        return Response(status_code=303, headers={"Location": step_url(draft.id, "trust")})
    values = trust_values(form)
    context = {
        "values": values,
        "errors": {},
        "picker": picker.build(values, form.get("service_query")),
        "picker_url": step_url(draft.id, "trust/picker"),
    }
    return render.page(request, "wizard/_service_picker.html", context, block=part)


# Step 3 -------------------------------------------------------------------------------------


def _details_values(form: FormValues) -> dict[str, Any]:
    keys, values = form.all("tag_key"), form.all("tag_value")
    tags = [[k, v] for k, v in zip(keys, values, strict=False)][: MAX_TAG_ROWS + 5]
    return {
        "name": form.get("name").strip(),
        "path": form.get("path", "/").strip() or "/",
        "description": form.get("description"),
        "max_session_hours": form.get("max_session_hours", "1").strip(),
        "tags": tags,
    }


def _review_context(
    wizard: Wizard, draft: Draft, check: DraftCheck, acknowledged: set[str] | None = None
) -> dict[str, Any]:
    review = policy_review(
        check, wizard.managed_document, data=draft.data, remote=wizard.remote_findings
    )
    details = draft.step("details")
    return {
        "draft": draft,
        "step": "review",
        "check": check,
        "details": {
            "path": "/",
            "max_session_hours": "1",
            "name": "",
            "description": "",
            **details,
        },
        "review": review,
        "acknowledged": acknowledged or set(),
        "is_sandbox": wizard.services.settings.is_sandbox,
        "trust_json": check.trust.json,
        "inline_json": (
            json.dumps(check.permissions.inline_document, indent=4)
            if check.permissions.inline_document
            else ""
        ),
        "rules": rules,
        "is_ec2": check.plan.instance_profile if check.plan else False,
        # The same role with the AWS CLI, shown before Create (issue 13).
        "cli": cli_commands(check.plan) if check.plan else [],
    }


def _review_page(
    request: Request,
    render: Renderer,
    wizard: Wizard,
    draft: Draft,
    *,
    errors: dict[str, str],
    status: int = 200,
    extra_rows: int = 1,
    acknowledged: set[str] | None = None,
) -> Response:
    check = wizard.check(draft.data)
    context = _review_context(wizard, draft, check, acknowledged)
    saved_tags = [t for t in context["details"].get("tags", []) if t and (t[0] or t[1])]
    context.update(
        errors={**check.details.errors, **errors} if draft.step("details") else errors,
        tag_errors=check.details.tag_errors if draft.step("details") else {},
        tag_rows=saved_tags + [["", ""]] * max(0, min(extra_rows, MAX_TAG_ROWS - len(saved_tags))),
    )
    return render.page(
        request, "wizard/review.html", context, block="wizard_step", status_code=status
    )


def _saved_review_page(request: Request, wizard: Wizard, draft: Draft) -> Response:
    return _review_page(request, request.app.state.renderer, wizard, draft, errors={})


STEP_PAGES["review"] = _saved_review_page


@router.get("/{draft_id}/review", response_class=HTMLResponse)
def review_step(
    request: Request, draft_id: str, wizard: WizardDep, render: RendererDep, more: int = 1
) -> Response:
    draft = load_draft(wizard, request, draft_id)
    if (redirect := done_redirect(draft)) is not None:
        return redirect
    return _review_page(
        request, render, wizard, draft, errors={}, extra_rows=max(1, min(more, MAX_TAG_ROWS))
    )


@router.post("/{draft_id}/review", response_class=HTMLResponse)
def save_review(
    request: Request, draft_id: str, form: FormDep, wizard: WizardDep, render: RendererDep
) -> Response:
    draft = load_draft(wizard, request, draft_id)
    if (redirect := done_redirect(draft)) is not None:
        return redirect
    saved = wizard.drafts.save_step(draft.id, "details", _details_values(form))
    if saved is None:  # another tab started creating the role meanwhile
        return redirect_after_post(request, step_url(draft.id, "done"))
    nav = form.get("nav")
    if nav == "previous":
        return go_to_step(request, wizard, saved, "permissions")
    if nav == "add_tag":
        shown = ascii_int(form.get("more", "1"))
        more = min(MAX_TAG_ROWS, shown + 1) if shown is not None else 2
        query = f"?more={more}"
        if is_partial(request) and targets(request, "wizard-step"):
            response = _review_page(request, render, wizard, saved, errors={}, extra_rows=more)
            response.headers["HX-Push-Url"] = in_account(
                request.scope, step_url(draft.id, "review") + query
            )
            return response
        return redirect_after_post(request, step_url(draft.id, "review") + query)
    return go_to_step(request, wizard, saved, "review")


# Create and done ----------------------------------------------------------------------------


@router.post("/{draft_id}/create", response_class=HTMLResponse)
def create_role(
    request: Request,
    draft_id: str,
    form: FormDep,
    wizard: WizardDep,
    render: RendererDep,
    services: ServicesDep,
    ctx: AuditContextDep,
) -> Response:
    draft = load_draft(wizard, request, draft_id)
    if (redirect := done_redirect(draft)) is not None:
        return redirect  # a second click or another tab: the first one is creating it
    # The details as sent are checked with the draft as read, and stored by the claim's
    # UPDATE when the create goes ahead (one write); a refused create stores them on its own,
    # so the review shows them again.
    details = _details_values(form) if form.get("name") or form.all("tag_key") else None
    if details is not None:
        draft = replace(draft, data={**draft.data, "details": details})

    def refused(errors: dict[str, str], **more: Any) -> Response:
        return _refused(request, render, wizard, draft, details, errors, **more)

    check = wizard.check(draft.data, fresh=True)
    if check.plan is None:
        return refused(_step_errors(check))
    preflight_errors = start_preflight(services, check.plan, wizard.quotas())
    # The risk gate's review, worked out while AWS answers the name checks.
    review = policy_review(
        check, wizard.managed_document, data=draft.data, remote=wizard.remote_findings
    )
    errors = preflight_errors()
    if errors:
        # Another tab may have claimed this draft and created the role meanwhile, which is
        # why the name is now taken: that is the same role, so show its done page.
        if (redirect := done_redirect(load_draft(wizard, request, draft_id))) is not None:
            return redirect
        return refused(errors)
    # The risk gate: nothing is created while an error stands, and each security warning
    # must be acknowledged by name (the checkboxes of the review).
    acknowledged = set(form.all("acknowledge"))
    if review.blocks or (missing := review.unacknowledged(acknowledged)):
        message = (
            "Correct the errors listed in the review first."
            if review.blocks
            else f"Acknowledge each security warning before creating the role "
            f"({len(missing)} not acknowledged): tick the box beside it."
        )
        return refused({"acknowledge": message}, acknowledged=acknowledged)
    if not wizard.drafts.claim(draft.id, ctx.operation_id, draft.data):
        return redirect_after_post(request, step_url(draft.id, "done"))
    summary = {
        "cli": cli_commands(check.plan),
        "name": check.plan.name,
        "instance_profile": check.plan.instance_profile,
    }
    plan, drafts, record = check.plan, wizard.drafts, review.record(acknowledged)
    claimed = draft.data  # what the claim stored: a draft being created is never edited

    def finish(outcome: CreateOutcome) -> None:
        drafts.finish(
            draft.id,
            role_arn=outcome.role_arn if outcome.ok else None,
            failure=None if outcome.ok else outcome.failure_record(),
            summary=summary,
            data=claimed,
        )

    # In the background, so the done page can show the calls as they complete; a quick run
    # (the sandbox, a small role) is finished before the redirect.
    services.runs.start(
        ctx.operation_id,
        lambda: RoleCreator(services).run(plan, ctx, finish, review=record),
        "create-role",
    )
    services.runs.wait(ctx.operation_id, CREATE_WAIT_SECONDS)
    finished = wizard.drafts.get(draft.id)
    if finished is None:
        return redirect_after_post(request, step_url(draft.id, "done"))
    return go_to_step(request, wizard, finished, "done")


def _refused(
    request: Request,
    render: Renderer,
    wizard: Wizard,
    draft: Draft,
    details: dict[str, Any] | None,
    errors: dict[str, str],
    **more: Any,
) -> Response:
    """A create that does not go ahead: the review again with its errors, the details as sent
    stored first (so they are shown again and kept)."""
    if details is not None:
        saved = wizard.drafts.save_step(draft.id, "details", details)
        if saved is None:  # another tab or click is creating it
            return redirect_after_post(request, step_url(draft.id, "done"))
        draft = saved
    return _review_page(request, render, wizard, draft, errors=errors, status=422, **more)


def _step_errors(check: DraftCheck) -> dict[str, str]:
    errors: dict[str, str] = {}
    if check.trust.errors or check.trust.policy is None:
        errors["trust"] = "Step 1 (trusted entity) needs attention: " + "; ".join(
            check.trust.errors.values() or ["choose a trusted entity"]
        )
    if check.permissions.errors:
        errors["permissions"] = "Step 2 (permissions) needs attention: " + "; ".join(
            check.permissions.errors.values()
        )
    return errors


@router.get("/{draft_id}/done", response_class=HTMLResponse)
def done_page(request: Request, draft_id: str, wizard: WizardDep) -> Response:
    draft = load_draft(wizard, request, draft_id)
    if draft.status == "draft":
        return Response(status_code=303, headers={"Location": step_url(draft.id, "review")})
    if draft.status != "creating" and targets(request, "create-progress"):
        return Response(headers={"HX-Refresh": "true"})  # finished: show the whole result
    if draft.status == "creating" and wants_wait(request):
        draft = _wait_for_create(wizard, draft)  # "Check progress" without JavaScript
    return _done_page(request, wizard, draft)


def _wait_for_create(wizard: Wizard, draft: Draft) -> Draft:
    """The draft once its run has moved on (a call settled, or the run ended), or as it is
    after a few seconds."""
    services, operation = wizard.services, draft.operation_id or ""

    def look() -> tuple[Draft, tuple[str, ...]]:
        now = wizard.drafts.get(draft.id) or draft
        run = progress.load(services.db, operation, services.runs.running(operation))
        return now, tuple(step.status for step in run.steps) if run else ()

    found, _ = wait_for_news(
        look, state=lambda seen: seen[1], finished=lambda seen: seen[0].status != "creating"
    )
    return found


def _done_page(request: Request, wizard: Wizard, draft: Draft) -> Response:
    """The done step: live progress while the run goes on, then its result. The progress
    poll gets only its block; a step's htmx submit gets the step area."""
    render: Renderer = request.app.state.renderer
    services = wizard.services
    summary = draft.step("summary")
    operation = draft.operation_id or ""
    running = services.runs.running(operation)
    run = progress.load(services.db, operation, running) if operation else None
    # A run that has not finished for this long was cut short (the server stopped mid-run).
    stale = (
        draft.status == "creating"
        and not running
        and datetime.now(UTC) - draft.updated_at > STALE_AFTER
    )
    settling = any(operation in label for label in services.settler.waiting)
    return render.page(
        request,
        "wizard/done.html",
        {
            "draft": draft,
            "summary": summary,
            "failure": draft.failure or {},
            "stale": stale,
            "run": run,
            "settling": settling,
        },
        block="create_progress" if targets(request, "create-progress") else "wizard_step",
    )


STEP_PAGES["done"] = _done_page
