"""Shared set-up for the wizard benchmarks: the embedded sandbox (with the 1,582 AWS managed
policies), a migrated SQLite file, the seeded example data and the ASGI app."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app import migrate
from app.aws.sandbox import Sandbox
from app.sandbox_seed import seed
from app.services import Services, build_services
from app.settings import Settings
from app.web.csrf import COOKIE
from bench._client import signed_in_client


class ServerTimer:
    """ASGI wrapper summing the time the app spends on each request (server time, without the
    test client's own transport)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.total = 0.0
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.total += time.perf_counter() - started
                self.requests += 1


@contextmanager
def running_app() -> Iterator[tuple[Services, TestClient, str]]:
    """(services, client signed in as an admin, csrf token) against a fresh, seeded sandbox;
    `client.app` is the ServerTimer around the app."""
    sandbox = Sandbox(0)
    endpoint = sandbox.start()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate.upgrade(url)
        services = build_services(
            Settings(database_url=url, mode="sandbox"), sandbox_endpoint=endpoint
        )
        seed(services)
        try:
            with signed_in_client(services, wrap=ServerTimer) as client:
                client.get("/create-role")
                yield services, client, str(client.cookies[COOKIE])
        finally:
            services.db.dispose()
            sandbox.stop()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[index]
