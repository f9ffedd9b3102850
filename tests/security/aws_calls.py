"""Counting the AWS calls the app makes, with a botocore event hook on the sandbox clients."""

from __future__ import annotations

import re
from typing import Any

UNSENDABLE = re.compile("[\x00\ufffe\uffff\ud800-\udfff]")


class AwsCalls:
    """Every AWS call the app makes (operation and parameters), via a botocore event hook."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def unsendable(self) -> list[tuple[str, dict[str, Any]]]:
        return [c for c in self.calls if UNSENDABLE.search(repr(c[1]))]
