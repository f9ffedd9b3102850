"""Pure rules of the sign-in code: redirects, role parsing, host list, throttling verdicts."""

from datetime import UTC, datetime, timedelta

import pytest

from app.auth.guard import safe_next
from app.auth.permissions import Role
from app.auth.throttle import FREE_FAILURES, LOCK_FOR, SignInThrottle, _Failures
from app.auth.users import UserError, check_name, check_password
from app.settings import Settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/roles?q=ec2", "/roles?q=ec2"),
        ("/users", "/users"),
        ("", "/roles"),
        (None, "/roles"),
        ("https://evil.example/", "/roles"),
        ("//evil.example", "/roles"),
        ("/\\evil.example", "/roles"),
        ("roles", "/roles"),
        ("/sign-out", "/roles"),
        ("/" + "a" * 3000, "/roles"),
    ],
)
def test_safe_next(value, expected):
    assert safe_next(value) == expected


def test_roles_are_ordered_and_parsed():
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert Role.parse(" Admin ") is Role.ADMIN
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("root")


@pytest.mark.parametrize("name", ["alice", "a", "bob.smith@example.com", "x" * 64, "o-neil_2+ops"])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", " alice", "-x", "a b", "<script>", "x" * 65, "ä"])
def test_invalid_names(name):
    with pytest.raises(UserError):
        check_name(name)


def test_password_length_bounds():
    check_password("kestrel harbour 71")  # 18 characters, hard to guess
    check_password("kestrel harbour 71 " * 53)  # 1,007 characters
    for bad in ("kestrel 71", "kestrel harbour 71 " * 54):
        with pytest.raises(UserError):
            check_password(bad)


def test_host_allowlist():
    assert Settings(host="127.0.0.1").host_allowlist() == [
        "127.0.0.1",
        "localhost",
        "::1",
        "[::1]",
        "testserver",
    ]
    assert "10.0.0.5" in Settings(host="10.0.0.5").host_allowlist()
    assert "0.0.0.0" not in Settings(host="0.0.0.0").host_allowlist()
    assert Settings(allowed_hosts=" a.example , b.example ").host_allowlist() == [
        "a.example",
        "b.example",
    ]


def test_throttle_verdicts():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    verdict = SignInThrottle._verdict
    assert verdict(now, _Failures(FREE_FAILURES - 1, now), 10).allowed
    waiting = verdict(now, _Failures(FREE_FAILURES, now), 10)
    assert not waiting.allowed and not waiting.locked and waiting.retry_after == 3
    assert verdict(now + timedelta(seconds=2), _Failures(FREE_FAILURES, now), 10).allowed
    capped = verdict(now, _Failures(9, now), 10)
    assert capped.retry_after == 61  # 2**7 capped at 60 s, rounded up
    locked = verdict(now, _Failures(10, now), 10)
    assert locked.locked and "locked" in locked.message
    assert verdict(now + LOCK_FOR, _Failures(10, now), 10).allowed
