"""The progress page of any engine run: its steps as the ledger tells them, polled by htmx
while it runs; without JavaScript, "Check progress" waits for news (app.web.check_progress)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from app.instances.forms import valid_operation_id
from app.operations import progress
from app.web.check_progress import wait_for_news, wants_wait
from app.web.deps import RendererDep, ServicesDep

router = APIRouter()


@router.get("/operations/{operation_id}", response_class=HTMLResponse)
def operation_page(
    request: Request, operation_id: str, services: ServicesDep, render: RendererDep
) -> Response:
    if not valid_operation_id(operation_id):
        raise HTTPException(404, "There is no such operation.")

    def look() -> progress.Progress | None:
        return progress.load(services.db, operation_id, services.runs.running(operation_id))

    run = look()
    if run is None:
        raise HTTPException(404, "There is no such operation.")
    if wants_wait(request):
        run = wait_for_news(
            look,
            state=lambda seen: tuple(s.status for s in seen.steps) if seen else (),
            finished=lambda seen: seen is None or seen.finished,
        )
        if run is None:  # cannot happen once found: the ledger is append-only
            raise HTTPException(404, "There is no such operation.")
    return render.page(request, "operations/operation.html", {"run": run}, block="run_status")
