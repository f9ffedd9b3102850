"""Added latency on RoleDesk's AWS calls: what a page feels like against real AWS.

The sandbox answers an AWS call in about 5 ms; real IAM and EC2 answer in 50 to 300 ms, more
with retries. `ROLEDESK_SANDBOX_LATENCY_MS` adds that delay in sandbox mode, so a person
trying RoleDesk sees what real AWS makes them wait for (the create-role progress page, for
one), and the benchmarks' latency model (bench/latency.py) builds on the same hook.

The delay is a botocore `before-send` hook on RoleDesk's own clients (every client an
`AwsClients` builds, now and later, member accounts included): it sleeps before each HTTP
attempt, as a network round trip would, retries included.
"""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.aws.clients import AwsClients
    from app.settings import Settings


class AddedLatency:
    """Adds `delay_ms` (plus or minus up to `jitter_ms`) before every AWS request of the
    clients it is attached to, while `enabled`."""

    def __init__(
        self,
        delay_ms: float,
        jitter_ms: float = 0.0,
        *,
        seed: int = 15,
        enabled: bool = True,
    ) -> None:
        if delay_ms < 0 or jitter_ms < 0 or jitter_ms > delay_ms:
            raise ValueError("need 0 <= jitter_ms <= delay_ms")
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.enabled = enabled
        # Seeded, so two runs of a benchmark see the same sequence of delays.
        self._random = random.Random(seed)  # noqa: S311 - a delay, not a secret
        self._lock = threading.Lock()

    def attach(self, clients: AwsClients) -> None:
        """Hook every boto3 client of `clients`, now and later built."""
        clients.hook_every_client("before-send", self.before_send)

    def delay(self) -> float:
        """One request's delay in seconds."""
        with self._lock:
            jitter = self._random.uniform(-self.jitter_ms, self.jitter_ms)
        return (self.delay_ms + jitter) / 1000

    def before_send(self, **_: Any) -> None:
        # Returning None lets botocore send the request as usual.
        if self.enabled:
            time.sleep(self.delay())


def apply_sandbox_latency(settings: Settings, clients: AwsClients) -> AddedLatency | None:
    """The delay `ROLEDESK_SANDBOX_LATENCY_MS` asks for, on `clients` (sandbox mode only; the
    settings refuse it in `aws` mode). Called once the sandbox is seeded, so the seed does not
    wait for it."""
    if not settings.is_sandbox or settings.sandbox_latency_ms <= 0:
        return None
    latency = AddedLatency(settings.sandbox_latency_ms)
    latency.attach(clients)
    return latency
