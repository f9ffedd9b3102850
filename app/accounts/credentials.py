"""Assumed-role credentials per member account (and RoleDesk user), kept until shortly
before they expire, then fetched again.

One lock per (account, session name): threads asking for the same account while its
credentials are being fetched wait for that one AssumeRole instead of making their own;
other accounts are not held up. A failed AssumeRole is not cached: the next request tries
again (the spoke role may have been deployed in the meantime).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app.aws.sts import TemporaryCredentials

Assume = Callable[[str, str], TemporaryCredentials]  # (role ARN, session name) -> credentials
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class CredentialCache:
    def __init__(
        self, assume: Assume, *, refresh_before: timedelta, clock: Clock = utc_now
    ) -> None:
        self._assume = assume
        self._refresh_before = refresh_before
        self._clock = clock
        self._held: dict[tuple[str, str], TemporaryCredentials] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _fresh(self, credentials: TemporaryCredentials | None) -> bool:
        return credentials is not None and (
            self._clock() < credentials.expiration - self._refresh_before
        )

    def get(self, role_arn: str, session_name: str) -> TemporaryCredentials:
        """Cached credentials while they are good for more than `refresh_before`, else new
        ones. Raises the AwsError of a failed AssumeRole."""
        key = (role_arn, session_name)
        held = self._held.get(key)
        if self._fresh(held):
            assert held is not None
            return held
        with self._lock_for(key):
            held = self._held.get(key)  # another thread may have fetched them meanwhile
            if self._fresh(held):
                assert held is not None
                return held
            fetched = self._assume(role_arn, session_name)
            self._held[key] = fetched
            return fetched
