"""Sign-in throttling, per user name and per client address.

After a few failures each further attempt must wait longer (2, 4, 8 … seconds, at most a
minute) after the last failure; after many failures sign-in is locked for a while, even with
the right password. Counting is over a sliding window of the attempts table, so it holds
across processes. A success clears the user's count (not the address's: one valid account
must not let an attacker keep guessing others from the same address).
Refusing early (429) instead of sleeping keeps server threads free.

Concurrent guesses must count one by one, so the check and the record are one step
(`reserve`): in a single transaction that no other reservation for the same user or address
can interleave with, the failures are counted and, if the attempt is allowed, it is written
as a failure BEFORE the password hash is verified; a correct password then turns that row into
a success (`succeeded`). A crash during verification leaves a failure: the safe side.
SQLite serialises the transaction with its write lock (BEGIN IMMEDIATE, waiting up to the busy
timeout); PostgreSQL with transaction-scoped advisory locks on the user name and the address
(taken in a fixed order, so two reservations cannot deadlock), which, unlike a row lock, also
hold for a name or address that has no row yet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from app.auth.clock import Clock, as_utc, utc_now
from app.auth.models import SignInAttempt
from app.db import Database

WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)
FREE_FAILURES = 3
USER_LOCK_AT = 10
ADDRESS_LOCK_AT = 50
MAX_DELAY_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds
    locked: bool = False

    @property
    def message(self) -> str:
        if self.locked:
            minutes = max(1, (self.retry_after + 59) // 60)
            return f"Too many failed sign-ins: sign-in is locked for {minutes} more minute(s)."
        return f"Too many failed sign-ins: wait {self.retry_after} seconds and try again."


def _name_key(name: str) -> str:
    return name.strip().lower()[:64]


def _lock_id(kind: str, value: str) -> int:
    """A stable signed 64-bit advisory lock key for one user name or address."""
    digest = hashlib.sha256(f"roledesk:sign-in:{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class _Failures:
    count: int
    last: datetime | None


class SignInThrottle:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self.clock = clock

    def check(self, name: str, address: str) -> Verdict:
        """The verdict without counting an attempt (for a form sent with empty fields)."""
        with self._db.session() as s:
            return self._judge(s, self.clock(), _name_key(name), address[:64])

    def reserve(self, name: str, address: str) -> tuple[Verdict, int | None]:
        """Atomically: the verdict, and if allowed the attempt recorded as a failure (its id,
        for `succeeded`). Call before verifying the password."""
        now = self.clock()
        name_key, address = _name_key(name), address[:64]
        options = {"sqlite_immediate": True} if self._db.is_sqlite else {}
        with self._db.sessions() as s:
            s.connection(execution_options=options)
            if not self._db.is_sqlite:
                for lock in sorted({_lock_id("user", name_key), _lock_id("addr", address)}):
                    s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
            verdict = self._judge(s, now, name_key, address)
            attempt_id: int | None = None
            if verdict.allowed:
                attempt = SignInAttempt(at=now, name_key=name_key, address=address, succeeded=False)
                s.add(attempt)
                s.flush()
                attempt_id = attempt.id
                # Old attempts matter to nobody; keep the table small.
                s.execute(delete(SignInAttempt).where(SignInAttempt.at < now - WINDOW - LOCK_FOR))
            s.commit()
        return verdict, attempt_id

    def succeeded(self, attempt_id: int) -> None:
        """The reserved attempt had the right password: it clears the user's count."""
        with self._db.session() as s:
            s.execute(
                update(SignInAttempt).where(SignInAttempt.id == attempt_id).values(succeeded=True)
            )

    def _judge(self, s: Session, now: datetime, name_key: str, address: str) -> Verdict:
        verdicts = [
            self._verdict(now, self._failures(s, now, name_key=name_key), USER_LOCK_AT),
            self._verdict(now, self._failures(s, now, address=address), ADDRESS_LOCK_AT),
        ]
        refused = [v for v in verdicts if not v.allowed]
        if not refused:
            return Verdict(True)
        return max(refused, key=lambda v: (v.locked, v.retry_after))

    @staticmethod
    def _failures(s: Session, now: datetime, **where: str) -> _Failures:
        column, value = next(iter(where.items()))
        key = getattr(SignInAttempt, column)
        since = now - WINDOW
        if column == "name_key":
            last_ok = s.scalar(
                select(func.max(SignInAttempt.at)).where(key == value, SignInAttempt.succeeded)
            )
            if last_ok is not None:
                since = max(since, as_utc(last_ok))
        row = s.execute(
            select(func.count(), func.max(SignInAttempt.at)).where(
                key == value, ~SignInAttempt.succeeded, SignInAttempt.at > since
            )
        ).one()
        last: datetime | None = row[1]
        return _Failures(int(row[0]), as_utc(last) if last is not None else None)

    @staticmethod
    def _verdict(now: datetime, failures: _Failures, lock_at: int) -> Verdict:
        if failures.last is None or failures.count < FREE_FAILURES:
            return Verdict(True)
        if failures.count >= lock_at:
            until = failures.last + LOCK_FOR
            if now < until:
                return Verdict(False, int((until - now).total_seconds()) + 1, locked=True)
            return Verdict(True)
        delay = min(2 ** (failures.count - FREE_FAILURES + 1), MAX_DELAY_SECONDS)
        ready = failures.last + timedelta(seconds=delay)
        if now < ready:
            return Verdict(False, int((ready - now).total_seconds()) + 1)
        return Verdict(True)
