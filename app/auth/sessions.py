"""Server-side sessions (OWASP ASVS V7).

The browser holds only a random 256-bit token; the database holds its SHA-256, the user, and
the times that bound it: idle timeout (no request for `idle`) and absolute timeout (`max_age`
after sign-in). Sign-in always creates a new session (no fixation); sign-out deletes the row,
so replaying the old cookie finds nothing. Each session also binds the CSRF token the browser
was given at sign-in (see app.web.csrf).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update

from app.auth.account_limits import parse_limit
from app.auth.clock import Clock, as_utc, utc_now
from app.auth.models import User, UserSession
from app.auth.permissions import Role
from app.auth.users import UserView
from app.db import Database

# last_seen is written at most this often: the idle timeout is minutes, a write per request
# would only add database load.
TOUCH_EVERY = timedelta(seconds=60)

_RESOLVE = (
    select(
        UserSession.user_id,
        UserSession.csrf_hash,
        UserSession.last_seen_at,
        UserSession.expires_at,
        User.name,
        User.role,
        User.disabled,
        User.account_limit,  # read every request: a new limit applies at once
    )
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.id_hash == bindparam("id_hash"))
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, and the hash of the CSRF token bound to it."""

    user: UserView
    csrf_hash: str
    expires_at: datetime


@dataclass(frozen=True)
class NewSession:
    token: str  # goes into the session cookie
    csrf_token: str  # goes into the CSRF cookie


class SessionStore:
    def __init__(
        self,
        db: Database,
        *,
        idle: timedelta = timedelta(minutes=30),
        max_age: timedelta = timedelta(hours=12),
        clock: Clock = utc_now,
    ) -> None:
        self._db = db
        self.idle = idle
        self.max_age = max_age
        self.clock = clock

    def create(self, user: UserView) -> NewSession:
        self.purge_expired()  # sign-ins are rare enough to keep the table tidy here
        new = NewSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        now = self.clock()
        with self._db.session() as s:
            s.add(
                UserSession(
                    id_hash=token_hash(new.token),
                    user_id=user.id,
                    csrf_hash=token_hash(new.csrf_token),
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.max_age,
                )
            )
        return new

    def resolve(self, token: str) -> SignedIn | None:
        """The session for a cookie value, if it is live and its user enabled; expired
        sessions are deleted when found.

        Runs on every request, so it is one Core query on a plain connection (no ORM unit of
        work), and writes only when the session is expired or last_seen_at is due."""
        if not token or len(token) > 128:
            return None
        now = self.clock()
        id_hash = token_hash(token)
        with self._db.engine.connect() as conn:
            row = conn.execute(_RESOLVE, {"id_hash": id_hash}).first()
            # End the read before any write: on SQLite a read transaction cannot become a
            # write once another connection has written (SQLITE_BUSY_SNAPSHOT).
            conn.rollback()
            if row is None:
                return None
            last_seen = as_utc(row.last_seen_at)
            expires_at = as_utc(row.expires_at)
            if now >= expires_at or now - last_seen >= self.idle:
                conn.execute(delete(UserSession).where(UserSession.id_hash == id_hash))
                conn.commit()
                return None
            if row.disabled:
                return None
            if now - last_seen >= TOUCH_EVERY:
                conn.execute(
                    update(UserSession)
                    .where(UserSession.id_hash == id_hash)
                    .values(last_seen_at=now)
                )
                conn.commit()
            user = UserView(
                row.user_id,
                row.name,
                Role.parse(row.role),
                row.disabled,
                parse_limit(row.account_limit),
            )
            return SignedIn(user, row.csrf_hash, expires_at)

    def destroy(self, token: str) -> None:
        with self._db.session() as s:
            s.execute(delete(UserSession).where(UserSession.id_hash == token_hash(token)))

    def destroy_for_user(self, user_id: int) -> None:
        """Ends every session of a user (password reset)."""
        with self._db.session() as s:
            s.execute(delete(UserSession).where(UserSession.user_id == user_id))

    def purge_expired(self) -> int:
        now = self.clock()
        with self._db.session() as s:
            result = s.execute(
                delete(UserSession).where(
                    (UserSession.expires_at <= now) | (UserSession.last_seen_at <= now - self.idle)
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
