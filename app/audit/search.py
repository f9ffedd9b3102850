"""The text an audit event is found by, kept in one column so PostgreSQL can index it.

Text search on the history used to test six ledger columns and the latest outcome's request
id and error with `ILIKE` for every entry it looked at, which no index can serve, so each page
looked through a bounded window of entries (p95 38.5 ms at 1 M events on PostgreSQL, the
slowest page). Each event's searchable text now sits in `audit_event_status.search`: its
fields lower-cased, joined by a separator no search term can contain (so a term never matches
across two fields), with the text of each outcome appended when it arrives. On PostgreSQL a
pg_trgm GIN index on that column answers `LIKE '%term%'` over the whole history (migration
0006_audit_search), and a word index (0009_search_words, below) answers the terms whose
trigrams are too common for it. SQLite has no such index and keeps its bounded window over
the ledger (app.audit.query); the column is filled there too, so both databases share one
write path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, literal_column
from sqlalchemy.dialects.postgresql import TSVECTOR

# ASCII unit separator: cannot be typed into the search box, so never part of a term.
SEPARATOR = "\x1f"
# pg_trgm indexes three-character grams: shorter terms cannot use the index.
MIN_INDEXED_TERM = 3
EVENT_FIELDS = ("actor", "action", "target", "event_id", "operation_id")
OUTCOME_FIELDS = ("aws_request_id", "error_code", "error_message")


def _params_text(params: Any) -> str:
    # As the ledger stores it (SQLAlchemy's JSON type writes json.dumps' default form).
    return "" if params is None else json.dumps(params)


def event_text(row: Mapping[str, Any]) -> str:
    """The searchable text of an intent or record entry (params already redacted)."""
    parts = [str(row.get(name) or "") for name in EVENT_FIELDS]
    parts.append(_params_text(row.get("params")))
    return SEPARATOR.join(parts).lower()


def outcome_text(row: Mapping[str, Any]) -> str:
    """What an outcome entry adds to its event's text (led by the separator)."""
    return "".join(SEPARATOR + str(row.get(name) or "") for name in OUTCOME_FIELDS).lower()


def term_pattern(term: str) -> str | None:
    """The `LIKE` pattern (escape character `\\`) for a search term, or None when the term
    cannot match anything (it contains the separator)."""
    needle = term.lower()
    if SEPARATOR in needle:
        return None
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Words, for PostgreSQL's word index: `audit_event_status.search_words`, a tsvector column
# that PostgreSQL generates from `search` (migration 0009_search_words) as runs of ASCII
# letters and digits, taken as they are (no parser, no dictionary); anything else (the field
# separator included) ends a word. ASCII only, so the split in SQL and in Python (`WORD`,
# for the term) cannot disagree.
WORD = re.compile(r"[a-z0-9]+")
SEARCH_WORDS: ColumnElement[Any] = literal_column("audit_event_status.search_words", type_=TSVECTOR)


# A last word shorter than this is not looked up as a prefix.
MIN_PREFIX = 3


def word_query(term: str, common: frozenset[str] = frozenset()) -> str | None:
    """A tsquery that every text containing `term` satisfies, or None when the term's words
    say nothing an index can look up.

    A word of the term with a non-word character on both sides is a whole word of the text;
    the last word, with a non-word character before it only, begins a word of the text (a
    prefix query). A first word with nothing before it may be the end of a longer word and a
    term that is a single word may sit inside one: those the word index cannot look up (the
    trigram index can). Words in `common` (app.audit.common_words) are left out: they narrow
    nothing and cost the most to look up. The query is a necessary condition only: `LIKE`
    decides.
    """
    needle = term.lower()
    parts = []
    for word in WORD.finditer(needle):
        if word.start() == 0 or word.group() in common:
            continue
        if word.end() == len(needle) and len(word.group()) < MIN_PREFIX:
            continue  # `a…` or `01…`: the start of too many words to narrow anything
        parts.append(f"'{word.group()}'" if word.end() < len(needle) else f"'{word.group()}':*")
    return " & ".join(parts) or None


def fill_sql(dialect: str) -> list[str]:
    """Statements that (re)build the column from the ledger for every event, as `event_text`
    and `outcome_text` do (used by `roledesk audit reindex`; migration 0006 has its own copy,
    as migrations do not change with the code)."""
    sep = "chr(31)" if dialect == "postgresql" else "char(31)"
    params = "e.params::text" if dialect == "postgresql" else "e.params"
    params = f"CASE WHEN e.params IS NULL OR {params} = 'null' THEN '' ELSE {params} END"
    event_fields = f" || {sep} || ".join(f"coalesce(e.{name}, '')" for name in EVENT_FIELDS)
    outcome_fields = "".join(f" || {sep} || coalesce(o.{name}, '')" for name in OUTCOME_FIELDS)
    return [
        f"UPDATE audit_event_status SET search = (SELECT lower({event_fields} || {sep} || "  # noqa: S608
        f"{params}) FROM audit_events e WHERE e.seq = audit_event_status.seq)",
        f"UPDATE audit_event_status SET search = search || (SELECT lower(''{outcome_fields}) "  # noqa: S608
        "FROM audit_events o WHERE o.seq = audit_event_status.outcome_seq) "
        "WHERE outcome_seq IS NOT NULL",
    ]
