"""PostgreSQL appends in one statement: one round trip and one commit per batch.

With one transaction per append, a single writer pays for the commit's WAL flush plus six
round trips (pool ping, BEGIN, chain lock, head read, ledger insert, index insert, COMMIT).
The flush is the price of durability; the round trips are not. Here the process remembers
the chain head it last wrote or read, computes the hashes from it, and sends ONE statement in
autocommit mode that takes the chain lock, inserts the entries and keeps the derived index in
step. The statement is its own transaction: when it returns, the entries are committed and
flushed (`synchronous_commit` as configured; nothing is weakened).

If another process extended the chain since, the remembered head is stale: the insert of
`head + 1` hits the primary key and the whole statement (all or nothing) is refused. The
caller then reads the head under the lock and appends in a transaction as before, so the
chain can never fork: one seq, one entry, whose prev_hash is the hash of the entry before.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

from app.audit.chain import HASHED_FIELDS
from app.audit.search import event_text, outcome_text
from app.audit.status_rows import FROM_EVENT, FROM_OUTCOME

# Every column of an entry: the hashed fields, then the chain links.
COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
CASTS = {"seq": "BIGINT", "recorded_at": "TIMESTAMPTZ", "params": "JSON"}
CASTS |= {"before": "JSON", "after": "JSON"}
JSON_COLUMNS = ("params", "before", "after")


def _row_sql(n: int) -> str:
    return "(" + ", ".join(f"CAST(:{c}_{n} AS {CASTS.get(c, 'TEXT')})" for c in COLUMNS) + ")"


def statement_sql(size: int) -> str:
    """The one statement for a batch of `size` entries."""
    rows = ",\n".join(_row_sql(n) for n in range(size))
    # Each entry's search text (app.audit.search), computed in Python like every other value.
    texts = ", ".join(f"(CAST(:seq_{n} AS BIGINT), CAST(:search_{n} AS TEXT))" for n in range(size))
    names = ", ".join(COLUMNS)
    copied = ", ".join(FROM_EVENT)
    outcome_columns = ", ".join(f"{column} = e.{source}" for column, source in FROM_OUTCOME.items())
    # Only constant column names and numbered placeholders are formatted in; values are bound.
    return f"""
WITH chain_lock AS (SELECT pg_advisory_xact_lock(:lock_key) AS held),
entries AS (
    INSERT INTO audit_events ({names})
    SELECT v.* FROM (VALUES {rows}) AS v({names}) CROSS JOIN chain_lock
    RETURNING *
),
texts AS (SELECT * FROM (VALUES {texts}) AS t(seq, search)),
new_events AS (
    INSERT INTO audit_event_status (seq, outcome, {copied}, search)
    SELECT e.seq, CASE WHEN kind = 'intent' THEN 'pending' ELSE outcome END, {copied}, t.search
    FROM entries AS e JOIN texts AS t ON t.seq = e.seq WHERE kind <> 'outcome'
),
outcomes AS (
    UPDATE audit_event_status AS s
    SET outcome = e.outcome, outcome_seq = e.seq, {outcome_columns},
        search = coalesce(s.search, '') || t.search
    FROM entries AS e JOIN texts AS t ON t.seq = e.seq
    WHERE e.kind = 'outcome' AND s.event_id = e.event_id
)
SELECT count(*) FROM entries
"""  # noqa: S608


_STATEMENTS: dict[int, Any] = {}


def can_batch(rows: list[dict[str, Any]]) -> bool:
    """One statement sees one snapshot: an outcome whose event is also in the batch (or two
    outcomes of one event) must be applied in order, by the transactional path."""
    seen: set[str] = set()
    for row in rows:
        if row["event_id"] in seen:
            return False
        seen.add(row["event_id"])
    return True


def insert_in_one_statement(conn: Connection, rows: list[dict[str, Any]], lock_key: int) -> None:
    """Insert `rows` (seq, hashes computed) under the chain lock, committing on return.

    `conn` must be in autocommit mode. Raises IntegrityError if the chain moved on."""
    size = len(rows)
    if size not in _STATEMENTS:
        _STATEMENTS[size] = text(statement_sql(size))
    params: dict[str, Any] = {"lock_key": lock_key}
    for n, row in enumerate(rows):
        for column in COLUMNS:
            value = row.get(column)
            if column in JSON_COLUMNS and value is not None:
                value = json.dumps(value)
            params[f"{column}_{n}"] = value
        params[f"search_{n}"] = outcome_text(row) if row["kind"] == "outcome" else event_text(row)
    conn.execute(_STATEMENTS[size], params)
