"""The `roledesk` command: serve the app, manage the database, print the IAM policy it needs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from app.audit.cli import audit
from app.settings import Mode, Settings

PERMISSIONS_FILE = Path(__file__).resolve().parents[1] / "docs" / "required-permissions.json"


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@click.group()
@click.version_option(package_name="roledesk")
def main() -> None:
    """RoleDesk: a self-hosted web dashboard for AWS IAM roles."""


@main.command()
@click.option(
    "--sandbox/--aws",
    "sandbox",
    default=None,
    help="Embedded AWS sandbox (default) or real AWS. [env ROLEDESK_MODE]",
)
@click.option("--host", help="Address to bind. [env ROLEDESK_HOST, default 127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on. [env ROLEDESK_PORT, default 8000]")
@click.option("--profile", help="AWS profile for --aws. [env ROLEDESK_AWS_PROFILE]")
@click.option("--region", help="Default AWS region. [env ROLEDESK_AWS_REGION, default us-east-1]")
@click.option("--sandbox-port", type=int, help="Port of the sandbox. [env ROLEDESK_SANDBOX_PORT]")
@click.option("--workers", type=int, help="Worker processes. [env ROLEDESK_WORKERS, default 1]")
def serve(
    sandbox: bool | None,
    host: str | None,
    port: int | None,
    profile: str | None,
    region: str | None,
    sandbox_port: int | None,
    workers: int | None,
) -> None:
    """Serve RoleDesk (sandbox mode unless --aws)."""
    from app.server import ServeError, run_server

    mode = None if sandbox is None else (Mode.SANDBOX if sandbox else Mode.AWS)
    settings = _settings(
        mode=mode,
        host=host,
        port=port,
        aws_profile=profile,
        aws_region=region,
        sandbox_port=sandbox_port,
        workers=workers,
    )
    try:
        run_server(settings)
    except ServeError as exc:
        click.echo(f"roledesk: {exc}", err=True)
        sys.exit(2)


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (head by default)."""
    from sqlalchemy.exc import SQLAlchemyError

    from app import migrate

    settings = Settings()
    _ensure_sqlite_dir(settings)
    try:
        migrate.upgrade(settings.database_url, revision)
    except migrate.NewerDatabase as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(migrate.database_problem(exc, settings.database_url)) from exc
    click.echo(f"Database at {revision}.")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` for none)."""
    from app import migrate

    migrate.downgrade(Settings().database_url, revision)
    click.echo(f"Database at {revision}.")


@db.command("check")
def db_check() -> None:
    """Fail when the models and the migrations differ."""
    from app import migrate

    migrate.check(Settings().database_url)
    click.echo("Models and migrations agree.")


@main.command()
@click.option("--check", is_flag=True, help=f"Fail if {PERMISSIONS_FILE.name} is out of date.")
@click.option("--write", is_flag=True, help=f"Rewrite {PERMISSIONS_FILE.name}.")
def permissions(check: bool, write: bool) -> None:
    """Print the IAM policy RoleDesk needs on real AWS."""
    from app.permissions import policy_json

    text = policy_json()
    if check:
        current = PERMISSIONS_FILE.read_text() if PERMISSIONS_FILE.exists() else ""
        if current != text:
            click.echo(
                f"{PERMISSIONS_FILE} is out of date: run `roledesk permissions --write`.", err=True
            )
            sys.exit(1)
        click.echo(f"{PERMISSIONS_FILE.name} is up to date.")
    elif write:
        PERMISSIONS_FILE.write_text(text)
        click.echo(f"Wrote {PERMISSIONS_FILE}.")
    else:
        click.echo(text, nl=False)


def _ensure_sqlite_dir(settings: Settings) -> None:
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


main.add_command(audit)


def _add_user_commands() -> None:
    from app.auth.cli import users

    main.add_command(users)


_add_user_commands()
