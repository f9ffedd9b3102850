"""Audit text search: a word index next to the trigram index (PostgreSQL only).

The trigram index of 0006 answers a term from its three-character grams. A role name like
`role-00042` is made of grams nearly every event has (`rol`, ` 00`, digits of the account id
in every ARN), so the index read posting lists covering most of the table and rechecked
thousands of false candidates: 35-370 ms at a million events, the slowest search. The new
column `search_words` holds each event's words (runs of ASCII letters and digits of `search`,
as a tsvector taken as they are: no parser, no dictionary) with a GIN index, so a term's whole
words and its last word's prefix are looked up directly (app.audit.search.word_query); `LIKE`
still decides.

A stored generated column, not an expression index: PostgreSQL computes it on every insert
and update (the write path is unchanged), and a plan that tests it row by row reads the stored
value instead of splitting the text again (about 30 us a row: a walk of a thousand rows would
cost 30 ms). Adding it is the backfill: PostgreSQL rewrites the table once, computing every
row, under an exclusive lock (minutes for a million events; see docs/performance.md).
SQLite keeps its windowed search and gets nothing.

Revision ID: 0009_search_words
Revises: 0008_shared_state
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009_search_words"
down_revision: str | None = "0008_shared_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_audit_event_status_search_words"
# As app.audit.search describes it (migrations keep their own copy).
EXPRESSION = "array_to_tsvector(array_remove(regexp_split_to_array(search, '[^a-z0-9]+'), ''))"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE audit_event_status ADD COLUMN search_words tsvector "
            f"GENERATED ALWAYS AS ({EXPRESSION}) STORED"
        )
        op.execute(f"CREATE INDEX {INDEX} ON audit_event_status USING gin (search_words)")
        # The planner's word frequencies, so it chooses between this index and a walk.
        op.execute("ANALYZE audit_event_status")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX {INDEX}")
        op.execute("ALTER TABLE audit_event_status DROP COLUMN search_words")
