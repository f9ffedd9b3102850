"""Shared set-up for the wizard benchmarks: the embedded sandbox (with the 1,582 AWS managed
policies), a migrated SQLite file, the seeded example data and the app, either called in
process (`running_app`, a TestClient) or served by uvicorn as `roledesk serve` serves it
(`served_app`, real HTTP on 127.0.0.1)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import migrate
from app.aws.clients import SANDBOX_KEYS
from app.aws.sandbox import Sandbox
from app.instances.inventory import INVENTORY as INSTANCES_STORED
from app.main import create_app
from app.roles.inventory import INVENTORY as ROLES_STORED
from app.sandbox_seed import seed
from app.services import Services, build_services
from app.settings import Settings
from app.shared.models import SharedInventory
from app.web.csrf import COOKIE
from bench._client import sign_in_admin, signed_in_client


class ServerTimer:
    """ASGI wrapper summing the time the app spends on each request (server time, without the
    test client's own transport)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.total = 0.0
        self.requests = 0
        self.each: list[float] = []  # each request's time, in order

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.each.append(time.perf_counter() - started)
                self.total += self.each[-1]
                self.requests += 1


@contextmanager
def running_app(*, sandbox_process: bool = False) -> Iterator[tuple[Services, TestClient, str]]:
    """(services, client signed in as an admin, csrf token) against a fresh, seeded sandbox;
    `client.app` is the ServerTimer around the app. With `sandbox_process`, the sandbox runs
    in a process of its own (bench._sandbox)."""
    with (
        seeded_services(sandbox_process=sandbox_process) as services,
        signed_in_client(services, wrap=ServerTimer) as client,
    ):
        client.get("/create-role")
        yield services, client, str(client.cookies[COOKIE])


class ServerTiming:
    """Sums RoleDesk's own `Server-Timing: app;dur=` figure over responses (redirects too):
    the time inside the app, from its outermost middleware, without HTTP parsing or the
    network."""

    def __init__(self) -> None:
        self.total = 0.0
        self.requests = 0
        self.each: list[float] = []  # each response's figure, in order
        self.app: Any = None  # the app served (its state: a bench waits on its runners)

    def __call__(self, response: httpx.Response) -> None:
        timing = response.headers["server-timing"]
        self.each.append(float(timing.split("dur=", 1)[1]) / 1000)
        self.total += self.each[-1]
        self.requests += 1


@contextmanager
def seeded_services(*, sandbox_process: bool = False) -> Iterator[Services]:
    """Services on a fresh sandbox (with the AWS managed policies), a migrated SQLite file in
    a temporary folder, and the seeded example data; all stopped and removed on exit.

    The sandbox runs in this process, as `roledesk serve` runs it, or with `sandbox_process`
    in a process of its own (bench._sandbox), as real AWS is: then moto's work on each call
    does not compete with RoleDesk's threads for this process's GIL."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate.upgrade(url)
        with ExitStack() as stack:
            if sandbox_process:
                endpoint = stack.enter_context(sandbox_in_a_process(url))
            else:
                sandbox = Sandbox(0)
                endpoint = sandbox.start()
                stack.callback(sandbox.stop)
            services = build_services(
                Settings(database_url=url, mode="sandbox"), sandbox_endpoint=endpoint
            )
            stack.callback(services.db.dispose)
            if not sandbox_process:
                seed(services)
            yield services


@contextmanager
def sandbox_in_a_process(database_url: str) -> Iterator[str]:
    """The seeded sandbox served by `python -m bench._sandbox` (its endpoint URL)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._sandbox", database_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        endpoint = process.stdout.readline().strip()
        if not endpoint.startswith("http"):
            raise RuntimeError(f"the sandbox process did not start (exit {process.wait()})")
        yield endpoint
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def served_app(
    *, sandbox_process: bool = False
) -> Iterator[tuple[Services, httpx.Client, str, ServerTiming]]:
    """(services, HTTP client signed in as an admin, csrf token, server-time sums) against a
    fresh, seeded sandbox, with RoleDesk served by uvicorn in this process (one worker, as
    `roledesk serve` runs by default), so the benchmark can hook RoleDesk's boto3 clients.
    With `sandbox_process`, the sandbox runs in a process of its own (bench._sandbox)."""
    with seeded_services(sandbox_process=sandbox_process) as services:
        app = create_app(services)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        timing = ServerTiming()
        timing.app = app
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            follow_redirects=True,
            event_hooks={"response": [timing]},
            # The first wizard run loads every managed policy: more than httpx's default 5 s
            # on a busy shared machine.
            timeout=120,
        )
        try:
            sign_in_admin(client, app, "bench", secrets.token_urlsafe(16), "/roles")
            client.get("/create-role")
            yield services, client, str(client.cookies[COOKIE]), timing
        finally:
            client.close()
            server.should_exit = True
            thread.join(timeout=10)


def sandbox_client(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    """A plain boto3 client on the sandbox: the calls a benchmark makes outside RoleDesk."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=region, **SANDBOX_KEYS)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[index]


def stored_nowhere(services: Services, inventory: str) -> None:
    """Every stored copy of `inventory` (every account's or region's) marked out of date, so
    the next view reads AWS: a list dropped from a process's memory is otherwise served from
    what app.shared stored for every process, without an AWS call (a "cold" view that made no
    call measured the database, not the first load)."""
    if services.shared is None:
        return
    with services.db.sessions() as session:
        keys = list(
            session.scalars(
                select(SharedInventory.key).where(SharedInventory.inventory == inventory)
            )
        )
    for key in keys:
        services.shared.expire(inventory, key)


def roles_not_loaded(services: Services) -> None:
    """The roles list held nowhere: not in this process, nor stored for every process."""
    services.inventory.invalidate()
    stored_nowhere(services, ROLES_STORED)


def instances_not_loaded(services: Services) -> None:
    """Every region's instances held nowhere (see roles_not_loaded)."""
    services.instances.invalidate()
    stored_nowhere(services, INSTANCES_STORED)
