"""What an event's `audit_event_status` row copies from its ledger entries.

The row is written with the event's intent or record entry and rewritten with each of its
outcome entries (the latest wins), in the same transaction as the entries. It holds every
column the history lists, so a page of events reads this table alone (migration
0013_status_page_columns). The append paths (app.audit.log's, app.audit.pg_append's one
statement), the rebuild from the ledger and the benchmark's bulk load all take the column
lists from here.
"""

from __future__ import annotations

from typing import Any

from app.audit.search import event_text, outcome_text

# Copied, under the same names, from the event's intent or record entry.
FROM_EVENT = (
    "event_id",
    "kind",
    "recorded_at",
    "operation_id",
    "actor",
    "source_ip",
    "account_id",
    "region",
    "action",
    "target",
)
# Copied from the event's latest outcome entry: status column -> the entry's column.
FROM_OUTCOME = {
    "completed_at": "recorded_at",
    "aws_request_id": "aws_request_id",
    "error_code": "error_code",
    "error_message": "error_message",
}


def event_status(entry: dict[str, Any]) -> dict[str, Any]:
    """The status row of a new intent or record entry: pending until an outcome, for an
    intent; a record's own outcome; nothing of an outcome entry yet."""
    return {
        "seq": entry["seq"],
        **{column: entry[column] for column in FROM_EVENT},
        "outcome": "pending" if entry["kind"] == "intent" else entry["outcome"],
        "outcome_seq": None,
        **dict.fromkeys(FROM_OUTCOME),
        "search": event_text(entry),
    }


def outcome_status(entry: dict[str, Any]) -> dict[str, Any]:
    """What an outcome entry changes in its event's status row (its search text is added to
    the event's, not put in its place: see `event_status` and app.audit.search)."""
    return {
        "outcome": entry["outcome"],
        "outcome_seq": entry["seq"],
        **{column: entry[source] for column, source in FROM_OUTCOME.items()},
        "search": outcome_text(entry),
    }


def settled_status(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The status row of an event whose entries (intent or record first, then its outcomes
    in order) are all written: as the append paths leave it."""
    row = event_status(entries[0])
    for entry in entries[1:]:
        outcome = outcome_status(entry)
        row |= outcome | {"search": row["search"] + outcome["search"]}
    return row
