"""Streaming the ledger out as JSON Lines or CSV, a line at a time.

`roledesk audit export` writes ledger entries with their hashes, so a copy kept elsewhere can
be re-verified (`check_entries` over the JSON lines). The history page's export writes events
(intent plus current outcome) matching the page's filters. CSV cells are formula-safe
(app.exports).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.audit.chain import HASHED_FIELDS
from app.audit.query import EventRow
from app.audit.verify import BATCH
from app.db import Database
from app.exports import FORMATS, to_lines
from app.models import AuditEvent

__all__ = ["ENTRY_FIELDS", "EVENT_FIELDS", "FORMATS", "event_dicts", "ledger_entries", "to_lines"]
ENTRY_FIELDS = (*HASHED_FIELDS, "prev_hash", "hash")
EVENT_FIELDS = tuple(f.name for f in fields(EventRow))


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
