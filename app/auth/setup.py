"""The one-time link that creates the first admin.

RoleDesk has no default password: on a start with no users, `serve` prints a link with a
random token (valid 15 minutes, usable once, stored hashed). Whoever can read the server's
output (the operator) opens it and chooses the first admin's name and password.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update

from app.auth.clock import Clock, as_utc, utc_now
from app.auth.models import SetupToken
from app.auth.sessions import token_hash
from app.db import Database

VALID_FOR = timedelta(minutes=15)


class SetupTokens:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self.clock = clock

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._db.session() as s:
            s.add(
                SetupToken(token_hash=token_hash(token), created_at=now, expires_at=now + VALID_FOR)
            )
        return token

    def is_valid(self, token: str) -> bool:
        if not token or len(token) > 128:
            return False
        with self._db.session() as s:
            row = s.get(SetupToken, token_hash(token))
            return row is not None and row.used_at is None and self.clock() < as_utc(row.expires_at)

    def consume(self, token: str) -> bool:
        """Marks the token used; False if it was not valid (or another request used it
        first: the conditional UPDATE lets only one win)."""
        if not self.is_valid(token):
            return False
        with self._db.session() as s:
            result = s.execute(
                update(SetupToken)
                .where(SetupToken.token_hash == token_hash(token), SetupToken.used_at.is_(None))
                .values(used_at=self.clock())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def any_issued(self) -> bool:
        with self._db.session() as s:
            return s.scalar(select(SetupToken.token_hash).limit(1)) is not None
