"""Application factory for uvicorn worker processes: `roledesk serve --workers N` uses it,
and so can an operator's own process manager:

    ROLEDESK_MODE=aws uvicorn --factory app.asgi:create_app_from_env --workers 4

It connects to AWS (or to a sandbox already running at ROLEDESK_AWS_ENDPOINT_URL) and the
database from ROLEDESK_* settings; it starts no sandbox and applies no migrations.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.aws.latency import apply_sandbox_latency
from app.main import create_app
from app.server import connect
from app.settings import Settings


def create_app_from_env() -> FastAPI:
    settings = Settings()
    if settings.is_sandbox and not settings.aws_endpoint_url:
        raise SystemExit(
            "sandbox mode in a worker process needs ROLEDESK_AWS_ENDPOINT_URL "
            "(use `roledesk serve --workers N`, which sets it)"
        )
    services = connect(settings, None)
    apply_sandbox_latency(settings, services.clients)  # the first process seeded the sandbox
    return create_app(services)
