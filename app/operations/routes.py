"""The progress page of any engine run: its steps as the ledger tells them, polled by htmx
while it runs, refreshed by the browser without JavaScript."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from app.instances.forms import valid_operation_id
from app.operations import progress
from app.web.deps import RendererDep, ServicesDep

router = APIRouter()


@router.get("/operations/{operation_id}", response_class=HTMLResponse)
def operation_page(
    request: Request, operation_id: str, services: ServicesDep, render: RendererDep
) -> Response:
    if not valid_operation_id(operation_id):
        raise HTTPException(404, "There is no such operation.")
    run = progress.load(services.db, operation_id, services.runs.running(operation_id))
    if run is None:
        raise HTTPException(404, "There is no such operation.")
    return render.page(request, "operations/operation.html", {"run": run}, block="run_status")
