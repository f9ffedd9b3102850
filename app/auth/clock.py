"""Time for sessions, throttling and setup tokens: one injectable clock so tests can move
time forward instead of waiting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything RoleDesk stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
