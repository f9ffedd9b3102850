"""Sign-in throttling, per user name and per client address.

After a few failures each further attempt must wait longer (2, 4, 8 … seconds, at most a
minute) after the last failure; after many failures sign-in is locked for a while, even with
the right password. Counting is over a sliding window of the attempts table, so it holds
across processes. A success clears the user's count (not the address's: one valid account
must not let an attacker keep guessing others from the same address).
Refusing early (429) instead of sleeping keeps server threads free.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

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


@dataclass(frozen=True)
class _Failures:
    count: int
    last: datetime | None


class SignInThrottle:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self.clock = clock

    def check(self, name: str, address: str) -> Verdict:
        now = self.clock()
        by_user = self._failures(now, name_key=name.strip().lower()[:64])
        by_address = self._failures(now, address=address[:64])
        verdicts = [
            self._verdict(now, by_user, USER_LOCK_AT),
            self._verdict(now, by_address, ADDRESS_LOCK_AT),
        ]
        refused = [v for v in verdicts if not v.allowed]
        if not refused:
            return Verdict(True)
        return max(refused, key=lambda v: (v.locked, v.retry_after))

    def record(self, name: str, address: str, *, succeeded: bool) -> None:
        now = self.clock()
        with self._db.session() as s:
            s.add(
                SignInAttempt(
                    at=now,
                    name_key=name.strip().lower()[:64],
                    address=address[:64],
                    succeeded=succeeded,
                )
            )
            # Old attempts matter to nobody; keep the table small.
            s.execute(delete(SignInAttempt).where(SignInAttempt.at < now - WINDOW - LOCK_FOR))

    def _failures(self, now: datetime, **where: str) -> _Failures:
        column, value = next(iter(where.items()))
        key = getattr(SignInAttempt, column)
        since = now - WINDOW
        with self._db.session() as s:
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
