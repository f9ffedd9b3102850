"""ROLEDESK_SANDBOX_LATENCY_MS: 0 to 5000 ms, sandbox mode only (real AWS brings its own)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.aws.latency import AddedLatency
from app.settings import Settings


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"ROLEDESK_{name.upper()}", value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_default_adds_nothing(monkeypatch):
    monkeypatch.delenv("ROLEDESK_SANDBOX_LATENCY_MS", raising=False)
    assert settings(monkeypatch, mode="sandbox").sandbox_latency_ms == 0


@pytest.mark.parametrize("value", ["0", "400", "5000"])
def test_accepted_in_sandbox_mode(monkeypatch, value):
    found = settings(monkeypatch, mode="sandbox", sandbox_latency_ms=value)
    assert found.sandbox_latency_ms == int(value)


@pytest.mark.parametrize("value", ["-1", "5001", "fast", "1.5"])
def test_out_of_range_or_not_a_whole_number_is_refused(monkeypatch, value):
    with pytest.raises(ValidationError, match="sandbox_latency_ms"):
        settings(monkeypatch, mode="sandbox", sandbox_latency_ms=value)


def test_refused_in_aws_mode(monkeypatch):
    with pytest.raises(ValidationError, match="for sandbox mode only"):
        settings(monkeypatch, mode="aws", sandbox_latency_ms="400")
    # 0 is the default, so it stays allowed with real AWS.
    assert settings(monkeypatch, mode="aws", sandbox_latency_ms="0").sandbox_latency_ms == 0


def test_the_delay_and_its_jitter():
    assert AddedLatency(400).delay() == pytest.approx(0.4)
    delays = [AddedLatency(50, 5, seed=s).delay() for s in range(20)]
    assert all(0.045 <= d <= 0.055 for d in delays) and len(set(delays)) > 1
    with pytest.raises(ValueError, match="jitter_ms <= delay_ms"):
        AddedLatency(10, 20)
    with pytest.raises(ValueError, match="0 <= jitter_ms"):
        AddedLatency(-1)
