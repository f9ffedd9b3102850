"""Starting RoleDesk: sandbox, database, AWS identity check, then uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from app import migrate
from app.audit.reconcile import reconcile_at_start
from app.aws.errors import AwsError, CredentialsProblem
from app.aws.sandbox import Sandbox
from app.services import Services, build_services
from app.settings import DEFAULT_DATA_DIR, Settings

log = logging.getLogger("roledesk")


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
        raise ServeError(f"{exc}. Run `roledesk db upgrade` first.") from exc


def connect(settings: Settings, sandbox_endpoint: str | None) -> Services:
    try:
        return build_services(settings, sandbox_endpoint=sandbox_endpoint)
    except CredentialsProblem as exc:
        raise ServeError(
            f"AWS credentials problem ({exc.code}): {exc.message or exc.plain} "
            "Configure credentials (aws configure, AWS_PROFILE or --profile) and try again."
        ) from exc
    except AwsError as exc:
        raise ServeError(f"cannot reach AWS ({exc.code}): {exc.message}") from exc


def start_services(settings: Settings) -> tuple[Services, Sandbox | None]:
    """Everything but the web server: used by `serve` and by the browser tests."""
    sandbox = None
    endpoint = None
    if settings.is_sandbox:
        sandbox = Sandbox(settings.sandbox_port)
        endpoint = sandbox.start()
        print(f"AWS sandbox (moto) at {endpoint}")
        print(f"  try: aws --endpoint-url {endpoint} --region us-east-1 iam list-roles")
    prepare_database(settings)
    services = connect(settings, endpoint)
    reconcile_at_start(services)
    if sandbox is not None and settings.sandbox_seed:
        from app.sandbox_seed import seed

        seed(services)
    return services, sandbox


def run_server(settings: Settings) -> None:
    from app.main import create_app

    services, sandbox = start_services(settings)
    print(
        f"RoleDesk ({services.mode_label}, account {services.identity.account}, "
        f"as {services.identity.arn}) at http://{settings.host}:{settings.port}"
    )
    try:
        uvicorn.run(
            create_app(services),
            host=settings.host,
            port=settings.port,
            log_level="info",
            proxy_headers=False,
        )
    finally:
        services.db.dispose()
        if sandbox is not None:
            sandbox.stop()
