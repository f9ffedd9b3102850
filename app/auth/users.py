"""The people who may use RoleDesk: adding them, their in-app role, disabling them, and
checking passwords (argon2id via argon2-cffi). Every change is a `record` entry in the audit
ledger; passwords never leave this module except as argon2 hashes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.audited import AuditContext
from app.audit.log import AuditLog
from app.auth.account_limits import (
    AccountLimitError,
    clean_accounts,
    format_limit,
    parse_limit,
)
from app.auth.clock import Clock, utc_now
from app.auth.models import User
from app.auth.password_strength import weak_password_problem
from app.auth.permissions import Role
from app.db import Database

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
NAME_RULE = "1 to 64 letters, digits and . _ @ + - (starting with a letter or digit)"
PASSWORD_MIN = 12
PASSWORD_MAX = 1024

# argon2-cffi's defaults (RFC 9106 low-memory profile: argon2id, t=3, m=64 MiB, p=4).
hasher = PasswordHasher()


class UserError(ValueError):
    """A user change that cannot be made, explained for the person who asked (field: which
    form field it is about)."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class UserView:
    """What the rest of the app sees of a user (never the hash)."""

    id: int
    name: str
    role: Role
    disabled: bool
    # The accounts the user may work in; empty: every account (app.auth.account_limits).
    accounts: tuple[str, ...] = ()

    @property
    def limited(self) -> bool:
        """Whether the account limit applies (admins are never limited)."""
        return bool(self.accounts) and self.role < Role.ADMIN


def _view(user: User) -> UserView:
    return UserView(
        user.id, user.name, Role.parse(user.role), user.disabled, parse_limit(user.account_limit)
    )


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UserError(f"A user name is {NAME_RULE}.")
    return name


def check_password(password: str, user_name: str = "") -> str:
    """Length (12-1024, OWASP ASVS), not only spaces, not a common or breached password, and
    not easily guessed (app.auth.password_strength). No composition rules: ASVS asks for none."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise UserError(
            f"A password is {PASSWORD_MIN} to {PASSWORD_MAX} characters long.", field="password"
        )
    if problem := weak_password_problem(password, user_name):
        raise UserError(problem, field="password")
    return password


class UsersService:
    def __init__(self, db: Database, audit_log: AuditLog, clock: Clock = utc_now) -> None:
        self._db = db
        self._audit = audit_log
        self._clock = clock
        self._dummy_hash: str | None = None

    def _dummy(self) -> str:
        """A hash to verify against for unknown names, so they cost as much as known ones."""
        if self._dummy_hash is None:
            self._dummy_hash = hasher.hash("not a password: unknown names cost a hash too")
        return self._dummy_hash

    # Reading

    def count(self) -> int:
        with self._db.session() as s:
            return int(s.scalar(select(func.count()).select_from(User)) or 0)

    def list(self) -> list[UserView]:
        with self._db.session() as s:
            return [_view(u) for u in s.scalars(select(User).order_by(User.name_key))]

    def get(self, name: str) -> UserView | None:
        with self._db.session() as s:
            user = self._find(s, name)
            return _view(user) if user else None

    def by_id(self, user_id: int) -> UserView | None:
        with self._db.session() as s:
            user = s.get(User, user_id)
            return _view(user) if user else None

    def verify(self, name: str, password: str) -> UserView | None:
        """The user if `password` is theirs and they are not disabled, else None. Unknown
        names cost one hash too, so timing does not reveal which names exist."""
        with self._db.session() as s:
            user = self._find(s, name) if len(name) <= 64 else None
            try:
                hasher.verify(user.password_hash if user else self._dummy(), password)
            except (VerificationError, InvalidHashError):
                return None
            if user is None or user.disabled:
                return None
            if hasher.check_needs_rehash(user.password_hash):
                user.password_hash = hasher.hash(password)
            return _view(user)

    # Changing (each one audited)

    def add(self, ctx: AuditContext, name: str, role: Role, password: str) -> UserView:
        check_name(name)
        check_password(password, name)
        with self._db.write_session() as s:  # read then write: take SQLite's lock first
            if self._find(s, name) is not None:
                raise UserError(f"There is already a user named {name}.")
            now = self._clock()
            user = User(
                name=name,
                name_key=name.lower(),
                role=role.label,
                password_hash=hasher.hash(password),
                disabled=False,
                created_at=now,
                updated_at=now,
            )
            s.add(user)
            s.flush()
            view = _view(user)
        self._record(ctx, "roledesk:CreateUser", name, {"role": role.label})
        return view

    def set_role(self, ctx: AuditContext, name: str, role: Role) -> UserView:
        with self._db.write_session() as s:
            self._lock_admins(s)
            user = self._existing(s, name)
            before = user.role
            if before == Role.ADMIN.label and role != Role.ADMIN:
                self._keep_an_admin(s, user)
            user.role = role.label
            user.updated_at = self._clock()
            view = _view(user)
        self._record(ctx, "roledesk:SetUserRole", view.name, {"role": role.label}, before)
        return view

    def set_disabled(self, ctx: AuditContext, name: str, disabled: bool) -> UserView:
        """Disabling also ends the user's sessions (the session check reads `disabled`)."""
        with self._db.write_session() as s:
            self._lock_admins(s)
            user = self._existing(s, name)
            if disabled and user.role == Role.ADMIN.label:
                self._keep_an_admin(s, user)
            user.disabled = disabled
            user.updated_at = self._clock()
            view = _view(user)
        action = "roledesk:DisableUser" if disabled else "roledesk:EnableUser"
        self._record(ctx, action, view.name, None)
        return view

    def set_accounts(self, ctx: AuditContext, name: str, accounts: tuple[str, ...]) -> UserView:
        """Limit user NAME to `accounts` (empty: every account). Admins are never limited,
        so limiting one is refused rather than stored to no effect."""
        try:
            cleaned = clean_accounts(accounts)
        except AccountLimitError as exc:
            raise UserError(str(exc), field="accounts") from exc
        with self._db.write_session() as s:
            user = self._existing(s, name)
            if cleaned and user.role == Role.ADMIN.label:
                raise UserError(
                    f"{user.name} is an admin: admins work in every account. Make them an "
                    "operator or viewer first.",
                    field="accounts",
                )
            before = user.account_limit
            user.account_limit = format_limit(cleaned)
            user.updated_at = self._clock()
            view = _view(user)
        self._audit.append(
            ctx.record(
                "roledesk:SetUserAccounts",
                target=f"roledesk:user/{view.name}",
                params={"accounts": format_limit(cleaned) or "all"},
                before={"accounts": before or "all"},
            )
        )
        return view

    def reset_password(self, ctx: AuditContext, name: str, password: str) -> UserView:
        check_password(password, name)
        with self._db.write_session() as s:
            user = self._existing(s, name)
            user.password_hash = hasher.hash(password)
            user.updated_at = self._clock()
            view = _view(user)
        self._record(ctx, "roledesk:ResetUserPassword", view.name, None)
        return view

    # Helpers

    @staticmethod
    def _find(s: Session, name: str) -> User | None:
        return s.scalar(select(User).where(User.name_key == name.strip().lower()))

    def _existing(self, s: Session, name: str) -> User:
        user = self._find(s, name)
        if user is None:
            raise UserError(f"There is no user named {name}.")
        return user

    @staticmethod
    def _lock_admins(s: Session) -> None:
        """The last-admin rule must not interleave: two admins demoting each other at once
        would each see the other still active. SQLite: the caller's transaction holds the
        write lock (Database.write_session). PostgreSQL: lock every active admin's row first;
        a second change waits, then re-reads the rows as the first one left them."""
        if s.get_bind().dialect.name != "sqlite":
            s.execute(
                select(User.id)
                .where(User.role == Role.ADMIN.label, ~User.disabled)
                .order_by(User.id)
                .with_for_update()
            ).all()

    @staticmethod
    def _keep_an_admin(s: Session, user: User) -> None:
        others = s.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN.label, ~User.disabled, User.id != user.id)
        )
        if not others:
            raise UserError(f"{user.name} is the only active admin; make another admin first.")

    def _record(
        self,
        ctx: AuditContext,
        action: str,
        name: str,
        params: dict[str, str] | None,
        before_role: str | None = None,
    ) -> None:
        self._audit.append(
            ctx.record(
                action,
                target=f"roledesk:user/{name}",
                params=params,
                before={"role": before_role} if before_role else None,
            )
        )
