"""The access review pages: every role's findings, a role's review, recording a decision, the
scan's progress, the findings' explanations and the export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from app.accounts.urls import in_account
from app.auth.permissions import Role as UserRole
from app.auth.permissions import require
from app.aws.errors import NotFound
from app.aws.types import Role
from app.exports import FORMATS, to_lines
from app.review.findings import KINDS
from app.review.last_accessed import POLL_SECONDS
from app.review.records import DECISIONS, NOTE_MAX, interval_for
from app.review.scan import ScannedRole
from app.review.view import (
    REVIEW_STATES,
    ReviewQuery,
    ReviewRow,
    build_row,
    parse_query,
    review_page,
)
from app.services import Services
from app.web.check_progress import wait_for_news, wants_wait
from app.web.deps import AuditContextDep, RendererDep, ServicesDep
from app.web.params import ROLE_NAME_RULE, is_role_name
from app.web.templating import Renderer, is_htmx, redirect_after_post
from app.wizard.web import FormDep

router = APIRouter()

EXPORT_COLUMNS = (
    "role_name",
    "role_arn",
    "path",
    "created",
    "last_used",
    "findings",
    "finding_details",
    "decision",
    "note",
    "reviewer",
    "reviewed_at",
    "next_review_due",
    "review_state",
)


def _base(services: Services, query: ReviewQuery, errors: dict[str, str]) -> dict[str, Any]:
    scan = services.access_scan
    return {
        "scan": scan.result,
        "progress": scan.progress,
        "query": query,
        "errors": errors,
        "kinds": KINDS,
        "review_states": REVIEW_STATES,
        "ttl_stale": scan.is_stale(),
    }


# The page's query parameters, declared so the route is documented (and walked by the
# hostile-input test) but typed as text: parse_query checks each and says what is wrong
# beside its field instead of FastAPI's JSON 422.
Text = Annotated[str, Query()]


@dataclass(frozen=True)
class Filters:
    """The review's filters and sort from the query string, checked, with the errors to show
    beside their fields: the one reading of them for the page and its export."""

    query: ReviewQuery
    errors: dict[str, str]


async def review_filters(
    services: ServicesDep,
    kind: Text = "",
    review: Text = "",
    q: Text = "",
    days: Text = "",
    sort: Text = "",
    order: Text = "",
    page: Text = "",
    per_page: Text = "",
) -> Filters:
    # async: it only parses text, so it runs on the event loop instead of taking a
    # threadpool hop on every request.
    values = {
        "kind": kind,
        "review": review,
        "q": q,
        "days": days,
        "sort": sort,
        "order": order,
        "page": page,
        "per_page": per_page,
    }
    query, errors = parse_query(
        {k: v for k, v in values.items() if v}, services.settings.review_unused_days
    )
    return Filters(query, errors)


FiltersDep = Annotated[Filters, Depends(review_filters)]


@router.get("/access-review", response_class=HTMLResponse)
def access_review(
    request: Request, services: ServicesDep, render: RendererDep, filters: FiltersDep
) -> Response:
    scan = services.access_scan
    scan.ensure()  # the first visit (or one after the TTL) starts a scan in the background
    if wants_wait(request) and scan.progress.running:  # "Check progress" without JavaScript
        wait_for_news(
            lambda: scan.progress,
            # The count moves with every role: news is the next phase, or the end.
            state=lambda seen: (seen.running, seen.phase),
            finished=lambda seen: not seen.running,
        )
    query, errors = filters.query, filters.errors
    context = _base(services, query, errors)
    if scan.result is not None:
        context["page"] = review_page(
            scan.result, services.reviews.latest(), query, datetime.now(UTC)
        )
    return render.page(
        request,
        "review/index.html",
        context,
        block="review_results",
        status_code=422 if errors else 200,
    )


@router.get("/access-review/progress", response_class=HTMLResponse)
def scan_progress(request: Request, services: ServicesDep, render: RendererDep) -> Response:
    """The scan's progress bar (htmx polls it); once finished, htmx reloads the page."""
    progress = services.access_scan.progress
    response = render.page(
        request,
        "review/_progress.html",
        {"progress": progress, "scan": services.access_scan.result},
    )
    if not progress.running:
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/access-review/scan")
def start_scan(request: Request, services: ServicesDep) -> Response:
    """Scan the account again now (in the background)."""
    services.access_scan.start()
    return redirect_after_post(request, "/access-review")


@router.get("/access-review/findings", response_class=HTMLResponse)
def explanations(request: Request, services: ServicesDep, render: RendererDep) -> Response:
    return render.page(
        request,
        "review/findings.html",
        {
            "kinds": KINDS,
            "days": services.settings.review_unused_days,
            "interval": services.settings.review_interval_days,
        },
    )


def _scanned(services: Services, name: str) -> ScannedRole:
    if not is_role_name(name):
        raise HTTPException(
            404, f"There is no role named {name[:64]!r}: a role name is {ROLE_NAME_RULE}."
        )
    result = services.access_scan.result
    found = result.roles.get(name.lower()) if result else None
    if result is None or found is None:
        raise HTTPException(
            404,
            f"The access review has no role named {name}: it may be newer than the last scan "
            "(scan again) or no longer exist.",
        )
    return found


def _role_row(services: Services, scanned: ScannedRole, days: int) -> ReviewRow:
    result = services.access_scan.result
    assert result is not None
    history = services.reviews.history(scanned.name)
    return build_row(scanned, result, history[0] if history else None, datetime.now(UTC), days)


def _role_page(
    request: Request,
    services: Services,
    render: Renderer,
    scanned: ScannedRole,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    settings = services.settings
    return render.page(
        request,
        "review/role.html",
        {
            "row": _role_row(services, scanned, settings.review_unused_days),
            "history": services.reviews.history(scanned.name),
            "decisions": DECISIONS,
            "interval": interval_for(
                scanned.role, settings.review_interval_days, settings.review_intervals
            ),
            "form": form or {},
            "errors": errors or {},
            "note_max": NOTE_MAX,
            # The audit's own page asks AWS for the report when none is held (one call).
            **last_accessed_context(services, scanned.role, "review", start=True),
        },
        status_code=status,
    )


@router.get("/access-review/roles/{name}", response_class=HTMLResponse)
def role_review(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    scanned = _scanned(services, name)
    wait_for_report(request, services, scanned.role.name)
    return _role_page(request, services, render, scanned)


@router.post("/access-review/roles/{name}", response_class=HTMLResponse)
def record_review(
    request: Request,
    name: str,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    scanned = _scanned(services, name)
    decision = str(form.get("decision") or "")
    note = str(form.get("note") or "").strip()
    errors = {}
    if decision not in DECISIONS:
        errors["decision"] = "Choose keep, change needed or remove."
    if len(note) > NOTE_MAX:
        errors["note"] = f"Keep the note to {NOTE_MAX} characters (it has {len(note)})."
    if "\x00" in note:
        errors["note"] = "The note cannot contain a NUL character."
    if errors:
        values = {"decision": decision, "note": note[: NOTE_MAX * 2]}
        return _role_page(
            request, services, render, scanned, form=values, errors=errors, status=422
        )
    settings = services.settings
    services.reviews.record(
        ctx,
        scanned.role,
        decision,
        note,
        interval_for(scanned.role, settings.review_interval_days, settings.review_intervals),
    )
    return redirect_after_post(request, f"/access-review/roles/{scanned.name}#history")


def _export_rows(rows: list[ReviewRow]) -> Iterator[dict[str, Any]]:
    for row in rows:
        role, review = row.scanned.role, row.review
        used = role.last_used.last_used if role.last_used else None
        yield {
            "role_name": role.name,
            "role_arn": role.arn,
            "path": role.path,
            "created": role.created,
            "last_used": used,
            "findings": ", ".join(row.kinds),
            "finding_details": " | ".join(f"{f.label}: {f.message}" for f in row.findings),
            "decision": review.decision if review else "",
            "note": review.note if review else "",
            "reviewer": review.reviewer if review else "",
            "reviewed_at": review.reviewed_at if review else None,
            "next_review_due": row.due,
            "review_state": REVIEW_STATES[row.state],
        }


@router.get("/access-review/export")
def export_review(
    request: Request,
    services: ServicesDep,
    render: RendererDep,
    filters: FiltersDep,
    format: Text = "csv",
) -> Response:
    """The review report for the page's filters (every matching role, not one page), as CSV
    or JSON Lines; CSV cells are formula-safe (app.exports)."""
    query, errors = filters.query, dict(filters.errors)
    fmt = format
    result = services.access_scan.result
    if errors or fmt not in FORMATS or result is None:
        if fmt not in FORMATS:
            errors["format"] = "Choose CSV or JSON Lines."
        if result is None:
            errors["format"] = "The account scan has not finished yet: export once it has."
        context = _base(services, query, errors)
        if result is not None:
            context["page"] = review_page(
                result, services.reviews.latest(), query, datetime.now(UTC)
            )
        return render.page(request, "review/index.html", context, status_code=422)
    everything = ReviewQuery(**{**query.__dict__, "page": 1, "per_page": 1_000_000})
    page = review_page(result, services.reviews.latest(), everything, datetime.now(UTC))
    lines = to_lines(_export_rows(page.rows), EXPORT_COLUMNS, fmt)
    media = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return StreamingResponse(
        lines,
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="roledesk-access-review.{fmt}"'},
    )


def last_accessed_context(
    services: Services, role: Role, back: str, *, start: bool = False
) -> dict[str, Any]:
    """The `review/_last_accessed.html` include's context for `role` (its report as held,
    a running job's state asked for once); `start`: ask for a report when none is held."""
    reports = services.last_accessed
    held = reports.look(role.name)
    if start and held.state == "none":
        held = reports.start(role.name, role.arn)
    return {
        "la": held,
        "la_name": role.name,
        "la_back": back,
        "la_days": services.settings.review_unused_days,
        "la_now": datetime.now(UTC),
    }


def wait_for_report(request: Request, services: Services, name: str) -> None:
    """For "Check progress" without JavaScript: wait until AWS has finished the role's
    report, or a few seconds (each look asks AWS at most once a second)."""
    if wants_wait(request) and services.last_accessed.held(name).state == "running":
        wait_for_news(
            lambda: services.last_accessed.look(name),
            state=lambda seen: seen.state,
            finished=lambda seen: seen.state != "running",
            every=POLL_SECONDS,
        )


def _back(value: str) -> str:
    return value if value in ("role", "review") else "role"


def _role_for_report(services: Services, name: str) -> Role:
    if not is_role_name(name):
        raise HTTPException(
            404, f"There is no role named {name[:64]!r}: a role name is {ROLE_NAME_RULE}."
        )
    result = services.access_scan.result
    scanned = result.roles.get(name.lower()) if result else None
    if scanned is not None:
        return scanned.role
    try:
        return services.iam.get_role(name)
    except NotFound:
        raise HTTPException(404, f"There is no role named {name}.") from None


@router.get("/access-review/roles/{name}/last-accessed", response_class=HTMLResponse)
def last_accessed(
    request: Request,
    name: str,
    services: ServicesDep,
    render: RendererDep,
    back: Text = "role",
) -> Response:
    """The role's services-last-accessed section (htmx polls it while AWS builds the
    report); without htmx, the page it belongs on."""
    back = _back(back)
    if not is_htmx(request):
        page = "/roles/" if back == "role" else "/access-review/roles/"
        url = in_account(request.scope, f"{page}{quote(name, safe='')}#last-accessed")
        return RedirectResponse(url, status_code=303)
    role = _role_for_report(services, name)
    return render.page(
        request, "review/_last_accessed.html", last_accessed_context(services, role, back)
    )


@router.post(
    "/access-review/roles/{name}/last-accessed",
    response_class=HTMLResponse,
    # Asking AWS for the report changes nothing: anyone who may see the role may ask.
    dependencies=[Depends(require(UserRole.VIEWER))],
)
def start_last_accessed(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    """Ask AWS for a new report of the services the role used (one call; the page then
    follows the job)."""
    back = _back(str(form.get("back") or ""))
    role = _role_for_report(services, name)
    services.last_accessed.start(role.name, role.arn)
    if is_htmx(request):
        return render.page(
            request, "review/_last_accessed.html", last_accessed_context(services, role, back)
        )
    page = "/roles/" if back == "role" else "/access-review/roles/"
    return redirect_after_post(request, f"{page}{quote(role.name, safe='')}#last-accessed")
