"""The shapes every policy check returns, modelled on IAM Access Analyzer's ValidatePolicy.

A finding has a level (error, security_warning, warning, suggestion), a stable code, a
plain-language message that says what to do, and where it is (statement index, and line and
column in the text as typed). Errors block a change; security warnings need an explicit
acknowledgement at review; warnings and suggestions inform.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

Level = Literal["error", "security_warning", "warning", "suggestion"]
LEVELS: tuple[Level, ...] = ("error", "security_warning", "warning", "suggestion")
LEVEL_LABELS: dict[str, str] = {
    "error": "Error",
    "security_warning": "Security warning",
    "warning": "Warning",
    "suggestion": "Suggestion",
}


class PolicyKind(StrEnum):
    """Which kind of document is checked: each has its own grammar and checks."""

    TRUST = "trust"
    IDENTITY = "identity"  # inline policies and customer managed policies
    BOUNDARY = "boundary"  # a managed policy used as a permissions boundary


@dataclass(frozen=True)
class Finding:
    level: Level
    code: str
    message: str
    statement: int | None = None
    line: int | None = None
    column: int | None = None
    source: str = "RoleDesk"  # "RoleDesk" or "IAM Access Analyzer"
    subject: str = ""  # which document (policy name) a role-level finding is about

    @property
    def key(self) -> str:
        """A stable identifier of this finding, used to name its acknowledgement."""
        parts = [self.code, self.subject, "" if self.statement is None else str(self.statement)]
        return ":".join(parts)

    @property
    def label(self) -> str:
        return LEVEL_LABELS[self.level]

    @property
    def where(self) -> str:
        if self.line is not None:
            return f"Line {self.line}, column {self.column}"
        if self.statement is not None:
            return f"Statement {self.statement + 1}"
        return ""

    def about(self, subject: str) -> Finding:
        """The same finding, naming the document it is about."""
        return replace(self, subject=subject)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rank(finding: Finding) -> tuple[int, int, int]:
    return (LEVELS.index(finding.level), finding.line or 0, finding.column or 0)


@dataclass
class Analysis:
    """All findings for one document, errors and security warnings first."""

    findings: list[Finding] = field(default_factory=list)
    document: dict[str, Any] | None = None  # the parsed JSON when it is an object

    def __post_init__(self) -> None:
        self.findings = sorted(_dedupe(self.findings), key=_rank)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def security_warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "security_warning"]

    @property
    def blocks(self) -> bool:
        return any(f.level == "error" for f in self.findings)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (code, statement, position, subject): AWS's own and ours may repeat."""
    seen: set[tuple[Any, ...]] = set()
    out: list[Finding] = []
    for f in findings:
        marker = (f.code, f.statement, f.line, f.column, f.subject)
        if marker not in seen:
            seen.add(marker)
            out.append(f)
    return out
