"""The audit history pages: the filtered list, one event, one operation, and export.

Everything here reads the ledger; nothing changes it. Filters come from the query string
(GET forms that work without JavaScript; htmx swaps only the results block).
"""

from __future__ import annotations

import difflib
import json
import re
import threading
import weakref
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from app.audit import query
from app.audit.export import EVENT_FIELDS, FORMATS, event_dicts, to_lines
from app.audit.forms import AuditForm, parse_cursor, parse_filters
from app.audit.query import OUTCOMES, AuditQueries
from app.audit.status import ChainMonitor
from app.aws.calls import REGISTRY
from app.db import Database
from app.models import AuditEvent
from app.web.deps import RendererDep, ServicesDep
from app.web.templating import is_partial

router = APIRouter()

OPERATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_monitors: weakref.WeakKeyDictionary[Database, ChainMonitor] = weakref.WeakKeyDictionary()
_monitors_lock = threading.Lock()


def chain_monitor(db: Database) -> ChainMonitor:
    """One monitor per database per process, so verified progress is kept between views."""
    with _monitors_lock:
        monitor = _monitors.get(db)
        if monitor is None:
            monitor = _monitors[db] = ChainMonitor(db)
        return monitor


def known_actions() -> list[str]:
    return sorted({c.action for c in REGISTRY.values() if c.mutating and not c.sandbox_only})


def _queries(services: Any) -> AuditQueries:
    return AuditQueries(services.db, services.identity.account)


@router.get("/audit", response_class=HTMLResponse)
def list_events(
    request: Request,
    services: ServicesDep,
    render: RendererDep,
    before: Annotated[str | None, Query(max_length=20)] = None,
    after: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    form = parse_filters(dict(request.query_params))
    queries = _queries(services)
    page = None
    if form.errors:
        head_seq, _ = queries.head()
    else:
        # One session for the page and the ledger's head (the chain status).
        page, head_seq = queries.page_and_head(
            form.filters, before=parse_cursor(before), after=parse_cursor(after)
        )
    context: dict[str, Any] = {
        "form": form,
        "outcomes": OUTCOMES,
        "actions": known_actions(),
        "chain": chain_monitor(services.db).status(head_seq),
        "page": page,
        "oob": is_partial(request),
        "search_window": query.SEARCH_WINDOW,
    }
    if form.errors:
        return render.page(
            request, "audit/index.html", context, block="audit_results", status_code=422
        )
    return render.page(request, "audit/index.html", context, block="audit_results")


@router.get("/audit/export")
def export_events(
    request: Request,
    services: ServicesDep,
    render: RendererDep,
    format: Annotated[str, Query(max_length=8)] = "csv",
) -> Response:
    """The filtered view as CSV or JSON Lines, streamed in batches (never all in memory)."""
    form: AuditForm = parse_filters(dict(request.query_params))
    if form.errors or format not in FORMATS:
        return render.page(
            request,
            "audit/index.html",
            {
                "form": form,
                "outcomes": OUTCOMES,
                "actions": known_actions(),
                "chain": chain_monitor(services.db).status(_queries(services).head()[0]),
                "page": None,
                "oob": False,
                "search_window": query.SEARCH_WINDOW,
                "export_error": None if format in FORMATS else "Choose CSV or JSON Lines.",
            },
            status_code=422,
        )
    lines = to_lines(event_dicts(_queries(services).stream(form.filters)), EVENT_FIELDS, format)
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    filename = f"roledesk-audit.{format}"
    return StreamingResponse(
        lines,
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def snapshot_diff(before: Any, after: Any) -> list[str]:
    """Unified diff of the before and after snapshots as pretty JSON."""
    return list(
        difflib.unified_diff(
            _pretty(before).splitlines(),
            _pretty(after).splitlines(),
            fromfile="before",
            tofile="after",
            lineterm="",
        )
    )


@router.get("/audit/events/{seq}", response_class=HTMLResponse)
def event_detail(
    request: Request, seq: str, services: ServicesDep, render: RendererDep
) -> Response:
    number = parse_cursor(seq)
    entries = _queries(services).entries_of(number) if number and number < 2**62 else []
    if not entries:
        raise HTTPException(404, f"There is no audit event numbered {seq[:20]}.")
    head = entries[0]
    outcomes = [e for e in entries if e.kind == "outcome"]
    latest: AuditEvent | None = outcomes[-1] if outcomes else None
    after = next((e.after for e in reversed(entries) if e.after is not None), None)
    before = head.before
    return render.page(
        request,
        "audit/event.html",
        {
            "event": head,
            "entries": entries,
            "outcomes": outcomes,
            "latest": latest,
            "outcome": latest.outcome if latest else head.outcome,
            "params_json": _pretty(head.params) if head.params is not None else None,
            "before_json": _pretty(before) if before is not None else None,
            "after_json": _pretty(after) if after is not None else None,
            "diff": snapshot_diff(before, after)
            if before is not None and after is not None
            else [],
            "pretty": _pretty,
        },
    )


@router.get("/audit/operations/{operation_id}", response_class=HTMLResponse)
def operation_detail(
    request: Request, operation_id: str, services: ServicesDep, render: RendererDep
) -> Response:
    """All steps of one operation; htmx gets just the steps to expand a row in place."""
    steps = _queries(services).operation(operation_id) if OPERATION_ID.match(operation_id) else []
    if not steps:
        raise HTTPException(404, "There is no audited operation with that id.")
    return render.page(
        request,
        "audit/operation.html",
        {"operation_id": operation_id, "steps": steps},
        block="operation_steps",
    )
