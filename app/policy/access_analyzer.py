"""IAM Access Analyzer's findings merged with RoleDesk's (real AWS only).

ValidatePolicy answers in 50-300 ms, so its answers are cached by document and kind. A
finding of AWS's that repeats one of ours (same level at the same statement and line) is
dropped; if AWS cannot be asked (no permission, throttled), a suggestion says so and the
local findings stand alone.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Protocol

from app.aws.errors import AwsError
from app.policy.model import Finding, Level, PolicyKind

SOURCE = "IAM Access Analyzer"
_LEVELS: dict[str, Level] = {
    "ERROR": "error",
    "SECURITY_WARNING": "security_warning",
    "WARNING": "warning",
    "SUGGESTION": "suggestion",
}
_CACHE_SIZE = 256


class Validator(Protocol):
    def validate_policy(self, document: str, *, trust: bool) -> list[dict[str, Any]]: ...


def to_finding(raw: dict[str, Any]) -> Finding:
    """One ValidatePolicy finding (positions: line from 1, column from 0)."""
    statement = line = column = None
    locations = raw.get("locations") or []
    if locations:
        first = locations[0]
        for step in first.get("path", []):
            if isinstance(step, dict) and "index" in step:
                statement = int(step["index"])
                break
        start = (first.get("span") or {}).get("start") or {}
        if "line" in start:
            line, column = int(start["line"]), int(start.get("column", 0)) + 1
    level = _LEVELS.get(str(raw.get("findingType")), "warning")
    details = str(raw.get("findingDetails", "")).strip()
    link = raw.get("learnMoreLink")
    message = details + (f" See {link}" if link else "")
    return Finding(
        level,
        str(raw.get("issueCode", "ACCESS_ANALYZER")),
        message,
        statement,
        line,
        column,
        SOURCE,
    )


def merge(local: list[Finding], remote: list[Finding]) -> list[Finding]:
    """Local findings, then AWS's that do not repeat one of them."""
    taken = {(f.level, f.statement, f.line) for f in local}
    return local + [f for f in remote if (f.level, f.statement, f.line) not in taken]


class AccessAnalyzerChecks:
    """ValidatePolicy for documents as typed, cached by content."""

    def __init__(self, validator: Validator) -> None:
        self._validator = validator
        self._cache: OrderedDict[str, list[Finding]] = OrderedDict()
        self._lock = threading.Lock()

    def findings(self, text: str, kind: PolicyKind) -> list[Finding]:
        if not text.strip():
            return []
        key = hashlib.sha256(f"{kind.value}\0{text}".encode()).hexdigest()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        try:
            raw = self._validator.validate_policy(text, trust=kind is PolicyKind.TRUST)
        except AwsError as exc:
            return [
                Finding(
                    "suggestion",
                    "ACCESS_ANALYZER_UNAVAILABLE",
                    f"IAM Access Analyzer could not check this policy ({exc.code}: {exc.message}); "
                    "RoleDesk's own checks are shown. Allow access-analyzer:ValidatePolicy to "
                    "add AWS's.",
                    source=SOURCE,
                )
            ]
        found = [to_finding(r) for r in raw]
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return found
