"""Assumed-role credentials: kept until shortly before they expire, fetched once however many
threads ask at the same time, per account without one account holding up another."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from app.accounts.credentials import CredentialCache
from app.aws.errors import AccessDenied
from app.aws.sts import TemporaryCredentials

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Sts:
    """Counts AssumeRole calls; each answer lasts an hour from the clock's time."""

    def __init__(self, clock: Clock, delay: threading.Event | None = None) -> None:
        self.clock = clock
        self.calls: list[str] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, role_arn: str, session: str) -> TemporaryCredentials:
        with self.lock:
            self.calls.append(role_arn)
            n = len(self.calls)
        if self.delay is not None and role_arn.endswith("slow"):
            assert self.delay.wait(10)
        return TemporaryCredentials(
            f"ASIA{n}", "secret", "token", self.clock() + timedelta(hours=1)
        )


def cache_for(sts: Sts, clock: Clock) -> CredentialCache:
    return CredentialCache(sts, refresh_before=timedelta(minutes=5), clock=clock)


def test_credentials_are_reused_until_shortly_before_expiry_then_fetched_again():
    clock = Clock()
    sts = Sts(clock)
    cache = cache_for(sts, clock)
    first = cache.get("arn:aws:iam::111111111111:role/R", "roledesk-alice")
    clock.now = START + timedelta(minutes=54, seconds=59)
    assert cache.get("arn:aws:iam::111111111111:role/R", "roledesk-alice") is first
    clock.now = START + timedelta(minutes=55)
    second = cache.get("arn:aws:iam::111111111111:role/R", "roledesk-alice")
    assert second is not first and second.access_key_id == "ASIA2"
    assert len(sts.calls) == 2


def test_each_user_has_a_session_of_their_own():
    clock = Clock()
    sts = Sts(clock)
    cache = cache_for(sts, clock)
    alice = cache.get("arn:aws:iam::111111111111:role/R", "roledesk-alice")
    bob = cache.get("arn:aws:iam::111111111111:role/R", "roledesk-bob")
    assert alice is not bob and len(sts.calls) == 2


def test_many_threads_asking_at_once_cause_one_assume_role_per_account():
    clock = Clock()
    sts = Sts(clock)
    cache = cache_for(sts, clock)
    arns = [f"arn:aws:iam::{n:012d}:role/R" for n in range(1, 5)]
    barrier = threading.Barrier(32)
    got: list[TemporaryCredentials] = []
    lock = threading.Lock()

    def ask(arn: str) -> None:
        barrier.wait()
        found = cache.get(arn, "roledesk-alice")
        with lock:
            got.append(found)

    threads = [threading.Thread(target=ask, args=(arns[i % 4],)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 32
    assert sorted(sts.calls) == sorted(arns)
    assert len({id(c) for c in got}) == 4


def test_a_slow_account_does_not_hold_up_another():
    clock = Clock()
    release = threading.Event()
    sts = Sts(clock, delay=release)
    cache = cache_for(sts, clock)
    slow = threading.Thread(target=cache.get, args=("arn:aws:iam::1:role/slow", "roledesk-a"))
    slow.start()
    try:
        # The slow account's AssumeRole is still waiting; another account is served now.
        fast = cache.get("arn:aws:iam::2:role/fast", "roledesk-a")
        assert fast.access_key_id.startswith("ASIA")
        assert slow.is_alive()
    finally:
        release.set()
        slow.join(10)


def test_a_failed_assume_role_is_not_kept():
    clock = Clock()
    answers: list[object] = [AccessDenied("AccessDenied", "no", request_id="r-1")]
    good = TemporaryCredentials("ASIA1", "s", "t", START + timedelta(hours=1))

    def assume(role_arn: str, session: str) -> TemporaryCredentials:
        answer = answers.pop(0) if answers else good
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, TemporaryCredentials)
        return answer

    cache = CredentialCache(assume, refresh_before=timedelta(minutes=5), clock=clock)
    with pytest.raises(AccessDenied):
        cache.get("arn:aws:iam::1:role/R", "roledesk-a")
    assert cache.get("arn:aws:iam::1:role/R", "roledesk-a") is good
