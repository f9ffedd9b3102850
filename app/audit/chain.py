"""The hash chain: `hash = SHA-256(prev_hash || canonical JSON of the entry)`.

Canonical JSON: sorted keys, no insignificant whitespace, UTF-8, times as ISO 8601 UTC with
microseconds. Verification recomputes exactly this from the stored columns.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

# The columns covered by the hash, in addition to prev_hash (which is chained, not embedded).
HASHED_FIELDS = (
    "seq",
    "event_id",
    "kind",
    "recorded_at",
    "operation_id",
    "actor",
    "source_ip",
    "user_agent",
    "account_id",
    "region",
    "action",
    "target",
    "params",
    "outcome",
    "aws_request_id",
    "error_code",
    "error_message",
    "before",
    "after",
)


def _normalise_time(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back naive datetimes; we only ever store UTC.
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(entry: dict[str, Any]) -> bytes:
    body = {}
    for name in HASHED_FIELDS:
        value = entry.get(name)
        body[name] = _normalise_time(value) if isinstance(value, datetime) else value
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(entry)).hexdigest()
