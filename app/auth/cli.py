"""`roledesk users ...`: manage RoleDesk's users from the shell (the first admin, or when
nobody can sign in). Changes are audited with the OS user as actor (`cli:NAME`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from app.accounts.registry import RegistryUnreadable, read_accounts
from app.audit.audited import AuditContext, os_user
from app.audit.log import AuditLog
from app.auth.account_limits import ACCOUNT_ID
from app.auth.permissions import ROLE_CHOICES, Role
from app.auth.sessions import SessionStore
from app.auth.users import UserError, UsersService
from app.aws.errors import AwsError
from app.db import Database
from app.settings import Settings

ROLE = click.Choice(ROLE_CHOICES, case_sensitive=False)


@contextmanager
def _users() -> Iterator[tuple[UsersService, SessionStore]]:
    from app.server import ServeError, prepare_database

    settings = Settings()
    try:
        prepare_database(settings)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from exc
    db = Database(settings.database_url)
    try:
        yield UsersService(db, AuditLog(db)), SessionStore(db)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()


def _ctx() -> AuditContext:
    return AuditContext(actor=f"cli:{os_user()}")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@click.group()
def users() -> None:
    """RoleDesk users (people who sign in) and their in-app roles."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLE, required=True, help="viewer, operator or admin.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def users_add(name: str, role: str, password_stdin: bool) -> None:
    """Add user NAME (asks for the password unless --password-stdin)."""
    password = _password(password_stdin)
    with _users() as (service, _):
        user = service.add(_ctx(), name, Role.parse(role), password)
    click.echo(f"Added {user.name} ({user.role.label}).")


@users.command("list")
def users_list() -> None:
    """Every user, their role and whether they are disabled."""
    with _users() as (service, _):
        rows = service.list()
    if not rows:
        click.echo("No users yet: run `roledesk users add NAME --role admin`.")
    for user in rows:
        state = "disabled" if user.disabled else "active"
        where = ",".join(user.accounts) if user.limited else "all accounts"
        click.echo(f"{user.name}\t{user.role.label}\t{state}\t{where}")


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLE)
def users_set_role(name: str, role: str) -> None:
    """Give user NAME the in-app ROLE."""
    with _users() as (service, _):
        user = service.set_role(_ctx(), name, Role.parse(role))
    click.echo(f"{user.name} is now {user.role.label}.")


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
def users_disable(name: str, enable: bool) -> None:
    """Stop user NAME from signing in (and end their sessions)."""
    with _users() as (service, sessions):
        user = service.set_disabled(_ctx(), name, not enable)
        if not enable:
            sessions.destroy_for_user(user.id)
    click.echo(f"{user.name} is {'disabled' if user.disabled else 'enabled'}.")


@users.command("reset-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def users_reset_password(name: str, password_stdin: bool) -> None:
    """Set a new password for user NAME (and end their sessions)."""
    password = _password(password_stdin)
    with _users() as (service, sessions):
        user = service.reset_password(_ctx(), name, password)
        sessions.destroy_for_user(user.id)
    click.echo(f"New password set for {user.name}.")


def _check_known(ids: tuple[str, ...]) -> None:
    """Refuse ids of the right shape that are not in the account registry (shape errors
    are left to UsersService, which explains them the same way the Users page does)."""
    shaped = [a for a in ids if ACCOUNT_ID.fullmatch(a)]
    if not shaped:
        return
    try:
        known = {a.account_id for a in read_accounts(Settings()).accounts}
    except RegistryUnreadable as exc:
        raise click.ClickException(f"Cannot check the accounts: {exc}") from exc
    except AwsError as exc:
        raise click.ClickException(
            f"Cannot read the account list to check the ids: {exc}. Nothing was changed."
        ) from exc
    unknown = [a for a in dict.fromkeys(shaped) if a not in known]
    if unknown:
        listed = sorted(known)
        more = f" and {len(listed) - 20} more" if len(listed) > 20 else ""
        raise click.ClickException(
            f"Not an account RoleDesk manages: {', '.join(unknown[:10])}. Nothing was "
            f"changed; the accounts are {', '.join(listed[:20])}{more}."
        )


@users.command("limit")
@click.argument("name")
@click.option("--accounts", default="", help="Comma-separated 12-digit AWS account ids.")
@click.option("--all", "every", is_flag=True, help="Remove the limit: every account.")
def users_limit(name: str, accounts: str, every: bool) -> None:
    """Limit user NAME (a viewer or operator) to some AWS accounts, or --all of them.

    Each id must be an account RoleDesk manages (read as the server reads them: the
    organization's, or ROLEDESK_ACCOUNTS), so a typo cannot lock someone out. In sandbox
    mode set ROLEDESK_AWS_ENDPOINT_URL to the running RoleDesk's sandbox."""
    ids = tuple(a for a in (part.strip() for part in accounts.split(",")) if a)
    if every == bool(ids):
        raise click.UsageError("Give either --accounts ID,ID,... or --all.")
    if ids:
        _check_known(ids)
    with _users() as (service, _):
        user = service.set_accounts(_ctx(), name, () if every else ids)
    if user.accounts:
        click.echo(f"{user.name} may work in {', '.join(user.accounts)} only.")
    else:
        click.echo(f"{user.name} may work in every account.")
