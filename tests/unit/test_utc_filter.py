"""The templates' `utc` filter: its written-out formats for the history's rows give what
strftime gives, for naive (stored as UTC) and aware datetimes of any offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from app.web.templating import ISO_SECONDS, SECONDS, _utc

OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(
    # Naive bounds (Hypothesis wants them so); from year 1000, where strftime pads to 4 digits.
    moment=st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30)),  # noqa: DTZ001
    zone=st.none() | OFFSETS,
)
def test_the_rows_format_is_strftimes(moment: datetime, zone: timezone | None) -> None:
    value = moment if zone is None else moment.replace(tzinfo=zone)
    as_utc = moment.replace(tzinfo=UTC) if zone is None else value.astimezone(UTC)
    assert _utc(value, SECONDS) == as_utc.strftime(SECONDS)
    assert _utc(value, ISO_SECONDS) == as_utc.strftime(ISO_SECONDS)
    assert _utc(value) == as_utc.strftime("%Y-%m-%d %H:%M UTC")


def test_nothing_is_an_empty_string() -> None:
    assert _utc(None) == ""
