"""Counting the AWS calls the app really makes, with a botocore event hook on the sandbox
clients (`before-call`: after RoleDesk's own checks, just before the request is signed and
sent)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

UNSENDABLE = re.compile("[\x00\ufffe\uffff\ud800-\udfff]")


def strings(value: Any) -> Iterator[str]:
    """Every string inside a request (keys and values, nested)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


class AwsCalls:
    """Every AWS request the app sends (operation and serialized parameters)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, params.get("body")))

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def unsendable(self) -> list[tuple[str, Any]]:
        return [c for c in self.calls if any(UNSENDABLE.search(s) for s in strings(c[1]))]
