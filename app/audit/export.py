"""Streaming the ledger out as JSON Lines or CSV, a line at a time.

`roledesk audit export` writes ledger entries with their hashes, so a copy kept elsewhere can
be re-verified (`check_entries` over the JSON lines). The history page's export writes events
(intent plus current outcome) matching the page's filters.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from app.audit.chain import HASHED_FIELDS
from app.audit.query import EventRow
from app.audit.verify import BATCH
from app.db import Database
from app.models import AuditEvent

FORMATS = ("jsonl", "csv")
ENTRY_FIELDS = (*HASHED_FIELDS, "prev_hash", "hash")
EVENT_FIELDS = tuple(f.name for f in fields(EventRow))


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def _csv_cell(value: Any) -> Any:
    value = _value(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def to_lines(rows: Iterable[dict[str, Any]], columns: tuple[str, ...], fmt: str) -> Iterator[str]:
    """Each row as one JSON line, or CSV with a header row first."""
    if fmt == "jsonl":
        for row in rows:
            body = {k: _value(row.get(k)) for k in columns}
            yield json.dumps(body, ensure_ascii=False, sort_keys=True) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(k)) for k in columns])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def ledger_entries(
    db: Database, since: datetime | None = None, after_seq: int = 0
) -> Iterator[dict[str, Any]]:
    """Ledger entries in seq order, streamed from a server-side cursor."""
    query = select(*(getattr(AuditEvent, c) for c in ENTRY_FIELDS)).order_by(AuditEvent.seq)
    if after_seq:
        query = query.where(AuditEvent.seq > after_seq)
    if since is not None:
        query = query.where(AuditEvent.recorded_at >= since)
    with db.engine.connect() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=BATCH).execute(query):
            yield dict(row._mapping)


def event_dicts(events: Iterable[EventRow]) -> Iterator[dict[str, Any]]:
    for event in events:
        yield asdict(event)
