"""ROLEDESK_SANDBOX_LATENCY_MS on the real sandbox: every AWS call RoleDesk makes waits the
set delay (checked as a lower bound: tests are not timers); 0 attaches nothing."""

from __future__ import annotations

import time

from app.aws.latency import apply_sandbox_latency
from app.settings import Settings


def test_the_setting_delays_every_call_of_roledesks_clients(services):
    ec2 = services.ec2()
    assert apply_sandbox_latency(Settings(_env_file=None, mode="sandbox"), services.clients) is None
    latency = apply_sandbox_latency(
        Settings(_env_file=None, mode="sandbox", sandbox_latency_ms=150), services.clients
    )
    assert latency is not None and latency.delay_ms == 150
    started = time.perf_counter()
    ec2.list_regions()
    ec2.list_instances()
    assert time.perf_counter() - started >= 0.300  # two calls, one after the other
    # Clients built after the setting was applied (another service) wait too.
    sts = services.clients.client("sts", "eu-west-1")
    started = time.perf_counter()
    sts.get_caller_identity()
    assert time.perf_counter() - started >= 0.150
