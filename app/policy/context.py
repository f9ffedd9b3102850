"""The state one analysis shares between its checks: the text, positions, and findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.policy.locate import Locator, Path
from app.policy.model import Finding, Level, PolicyKind


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass
class Statement:
    index: int
    path: Path
    body: dict[str, Any]

    def values(self, key: str) -> list[Any]:
        return as_list(self.body[key]) if key in self.body else []

    def item_path(self, key: str, index: int) -> Path:
        return (
            (*self.path, key, index)
            if isinstance(self.body.get(key), list)
            else (
                *self.path,
                key,
            )
        )


@dataclass
class Context:
    text: str
    kind: PolicyKind
    account_id: str | None = None
    findings: list[Finding] = field(default_factory=list)
    locator: Locator | None = None

    def add(
        self, level: Level, code: str, message: str, path: Path = (), statement: int | None = None
    ) -> None:
        line = column = None
        if self.locator is not None:
            line, column = self.locator.at(path)
        self.findings.append(Finding(level, code, message, statement, line, column))

    def findings_block(self) -> bool:
        return any(f.level == "error" for f in self.findings)

    def at(self, st: Statement, level: Level, code: str, message: str, *key: str | int) -> None:
        self.add(level, code, message, (*st.path, *key), st.index)
