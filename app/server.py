"""Starting RoleDesk: sandbox, database, AWS identity check, then uvicorn."""

from __future__ import annotations

import contextlib
import inspect
import ipaddress
import logging
import os
import shlex
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from app import migrate
from app.audit.reconcile import reconcile_at_start
from app.aws.errors import AwsError, CredentialsProblem
from app.aws.latency import apply_sandbox_latency
from app.aws.sandbox import Sandbox
from app.operations.settle import close_interrupted
from app.services import Services, build_services
from app.settings import DEFAULT_DATA_DIR, Settings
from app.wizard.interrupted import settle_interrupted_runs

log = logging.getLogger("roledesk")
WORKER_HEALTHCHECK_SECONDS = 30


class ServeError(Exception):
    """A start-up problem explained in one line (no traceback)."""


def prepare_database(settings: Settings) -> None:
    """Apply migrations to the default SQLite file; elsewhere they are the operator's step."""
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        default = path.parent == DEFAULT_DATA_DIR
        if settings.is_sandbox and default:
            migrate.upgrade(settings.database_url)
            return
    try:
        migrate.check_at_head(settings.database_url)
    except migrate.NotAtHead as exc:
        command = upgrade_command(settings)
        raise ServeError(f"{exc}. Run first, with the same settings:\n  {command}") from exc


def upgrade_command(settings: Settings) -> str:
    """The exact `db upgrade` to run: this installation's roledesk (often not on PATH, e.g.
    .venv/bin/roledesk) with the same database URL (its password, if any, masked)."""
    from sqlalchemy.engine import make_url

    roledesk = Path(sys.argv[0]) if Path(sys.argv[0]).name == "roledesk" else None
    program = str(roledesk or Path(sys.executable).with_name("roledesk"))
    with contextlib.suppress(ValueError, OSError):
        program = os.path.relpath(program)
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    return f"ROLEDESK_DATABASE_URL={shlex.quote(url)} {shlex.quote(program)} db upgrade"


def boxed(lines: list[str]) -> str:
    """Lines in a box of # signs, so a message cannot be missed among the log lines."""
    width = max(len(line) for line in lines)
    edge = "#" * (width + 4)
    return "\n".join([edge, *(f"# {line.ljust(width)} #" for line in lines), edge])


def announce_when_listening(host: str, port: int, message: str, timeout: float = 60.0) -> None:
    """Print `message` once the server accepts connections: after uvicorn's own start-up
    lines, so it is the last thing on the screen (issue 13)."""

    def wait_then_print() -> None:
        deadline = time.monotonic() + timeout
        target = "127.0.0.1" if host in ("0.0.0.0", "::") else host.strip("[]")  # noqa: S104
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((target, port), 0.5):
                time.sleep(0.2)  # let uvicorn finish its "running on" line
                print(message, flush=True)
                return
            time.sleep(0.2)

    threading.Thread(target=wait_then_print, name="setup-link", daemon=True).start()


def connect(settings: Settings, sandbox_endpoint: str | None) -> Services:
    try:
        return build_services(settings, sandbox_endpoint=sandbox_endpoint)
    except CredentialsProblem as exc:
        raise ServeError(
            f"AWS credentials problem ({exc.code}): {(exc.message or exc.plain).rstrip('.')}. "
            "Configure credentials (aws configure, AWS_PROFILE or --profile) and try again."
        ) from exc
    except AwsError as exc:
        raise ServeError(f"AWS refused the start-up check ({exc.code}): {exc.message}") from exc


def start_services(settings: Settings) -> tuple[Services, Sandbox | None]:
    """Everything but the web server: used by `serve` and by the browser tests."""
    sandbox = None
    endpoint = None
    if settings.is_sandbox and settings.aws_endpoint_url:
        # A second RoleDesk (another replica) joining the sandbox the first one started, so
        # both show the same account; it is neither started nor seeded again here.
        endpoint = settings.aws_endpoint_url
        print(f"AWS sandbox (moto) at {endpoint} (joined, started by another RoleDesk)")
    elif settings.is_sandbox:
        sandbox = Sandbox(settings.sandbox_port)
        endpoint = sandbox.start()
        print(f"AWS sandbox (moto) at {endpoint}")
        print(f"  try: aws --endpoint-url {endpoint} --region us-east-1 iam list-roles")
    try:
        prepare_database(settings)
        services = connect(settings, endpoint)
        # Open one connection now (on SQLite it switches on WAL, a write), so a database
        # RoleDesk cannot write stops the start here with one line, before anything logs.
        with services.db.engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
        reconcile_at_start(services)
        for draft_id in settle_interrupted_runs(services):
            print(f"Create-role run {draft_id} was cut short by a stop: rolled back, marked failed")
        for operation_id in close_interrupted(services):
            print(f"Operation {operation_id} was cut short by a stop: recorded as stopped")
    except (ServeError, migrate.NewerDatabase, SQLAlchemyError) as exc:
        if sandbox is not None:
            sandbox.stop()
        if isinstance(exc, ServeError):
            raise
        if isinstance(exc, migrate.NewerDatabase):
            raise ServeError(str(exc)) from exc
        raise ServeError(migrate.database_problem(exc, settings.database_url)) from exc
    if sandbox is not None and settings.sandbox_seed:
        from app.sandbox_seed import seed, seed_organization

        seed(services)
        if settings.sandbox_organization:
            # Three member accounts for the multi-account parts (issue 17).
            seed_organization(services)
    # After the seed: the modelled latency is for the person trying RoleDesk, not its start.
    apply_sandbox_latency(settings, services.clients)
    return services, sandbox


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(settings: Settings) -> str | None:
    """A warning when RoleDesk listens beyond this machine without HTTPS in front."""
    if is_loopback(settings.host) or settings.https:
        return None
    return (
        f"WARNING: RoleDesk listens on {settings.host}, reachable from other machines, over "
        "plain HTTP: passwords and session cookies would cross the network unencrypted. Put "
        "a TLS proxy in front and set ROLEDESK_HTTPS=true (see docs/security.md), or bind "
        "to 127.0.0.1. Accepted Host names: " + ", ".join(settings.host_allowlist())
    )


def setup_link(services: Services) -> str | None:
    """With no users yet, a one-time link (15 minutes) that creates the first admin."""
    from app.auth.setup import SetupTokens
    from app.auth.users import UsersService

    if UsersService(services.db, services.audit_log).count() > 0:
        return None
    token = SetupTokens(services.db).issue()
    settings = services.settings
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    scheme = "https" if settings.https else "http"
    return f"{scheme}://{host}:{settings.port}/setup?token={token}"


def run_server(settings: Settings) -> None:
    from app.main import create_app

    services, sandbox = start_services(settings)
    print(
        f"RoleDesk ({services.mode_label}, account {services.identity.account}, "
        f"as {services.identity.arn}) at http://{settings.host}:{settings.port}"
    )
    warning = exposure_warning(settings)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    link = setup_link(services)
    if link:
        roledesk = os.path.relpath(Path(sys.executable).with_name("roledesk"))
        message = boxed(
            [
                "RoleDesk is ready. No users yet: create the first admin with this one-time",
                "link (valid 15 minutes):",
                "",
                link,
                "",
                f"or run: {roledesk} users add NAME --role admin",
            ]
        )
        announce_when_listening(settings.host, settings.port, "\n" + message)
    trusted_proxies = settings.forwarded_allow_ips.strip()
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        "proxy_headers": bool(trusted_proxies),
        "forwarded_allow_ips": trusted_proxies or None,
    }
    try:
        if settings.workers > 1:
            # Each worker process builds its own services from the environment; they share
            # this process's sandbox (if any) through its endpoint, and the database.
            if services.sandbox_endpoint:
                os.environ["ROLEDESK_AWS_ENDPOINT_URL"] = services.sandbox_endpoint
            if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
                # uvicorn kills a worker that does not answer its health ping in 5 s; a
                # new worker on a busy machine can take longer to start, and was killed
                # again and again.
                options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS
            uvicorn.run(
                "app.asgi:create_app_from_env", factory=True, workers=settings.workers, **options
            )
        else:
            uvicorn.run(create_app(services), **options)
    finally:
        services.db.dispose()
        if sandbox is not None:
            sandbox.stop()
