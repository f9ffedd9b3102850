"""Backoff for AWS errors that time cures (IAM's eventual consistency, A3).

Shared by every plan step that declares a retryable error; the sleep and the clock are
injected so tests never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from app.aws.errors import AwsError

R = TypeVar("R")


@dataclass
class RetryPolicy:
    budget_seconds: float = 120.0
    first_delay: float = 2.0
    max_delay: float = 15.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    sleeps: list[float] = field(default_factory=list)

    def run(self, attempt: Callable[[], R], retryable: Callable[[AwsError], bool]) -> R:
        deadline = self.clock() + self.budget_seconds
        delay = self.first_delay
        while True:
            try:
                return attempt()
            except AwsError as exc:
                if not retryable(exc) or self.clock() + delay > deadline:
                    raise
            self.sleep(delay)
            delay = min(delay * 2, self.max_delay)
