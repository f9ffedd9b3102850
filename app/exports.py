"""Rows written for people to open: JSON Lines as the data is, CSV with formula-safe cells.

Spreadsheet programs evaluate a cell that starts with `=`, `+`, `-` or `@` (and, in some of
them, after a leading tab or carriage return) as a formula, so text an attacker controls (a
user name typed at sign-in, a role description, an AWS error message) could run
`=HYPERLINK(...)` or DDE commands in the browser or desktop of whoever opens an export. OWASP's
CSV injection guidance: prefix such cells with a single quote, which spreadsheets show as text,
and quote every cell. JSON Lines keeps the original value (programs read it, not spreadsheets).
Every export of a report (audit history, ledger, any later one) goes through `to_lines`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

FORMATS = ("jsonl", "csv")
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def plain_value(value: Any) -> Any:
    """A JSON-ready value: datetimes as UTC ISO 8601 with a Z."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def safe_cell(value: Any) -> Any:
    """One CSV cell that no spreadsheet evaluates: text starting with a formula trigger gets a
    leading single quote; numbers, booleans and empty cells are left as they are."""
    value = plain_value(value)
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def to_lines(rows: Iterable[dict[str, Any]], columns: tuple[str, ...], fmt: str) -> Iterator[str]:
    """Each row as one JSON line, or CSV (every cell quoted and formula-safe) with a header
    row first, yielded in chunks of about 64 KB so exports stream."""
    if fmt == "jsonl":
        for row in rows:
            body = {k: plain_value(row.get(k)) for k in columns}
            yield json.dumps(body, ensure_ascii=False, sort_keys=True) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(k)) for k in columns])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
