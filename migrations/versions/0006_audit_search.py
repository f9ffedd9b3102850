"""Audit text search: each event's searchable text in one column, trigram-indexed on PostgreSQL.

Text search tested six ledger columns plus the latest outcome's request id and error with
ILIKE for every entry it looked at; no index can serve that, so it walked a bounded window and
was the slowest history page. `audit_event_status.search` now holds the event's fields
lower-cased and joined by a separator (app.audit.search, which the write path uses; the SQL
below builds the same text for existing rows), and on PostgreSQL a pg_trgm GIN index serves
`LIKE '%term%'` on it over the whole history. SQLite gets the column (one write path) but no
index: it keeps its windowed search.

pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.

Revision ID: 0006_audit_search
Revises: 0005_audit_filters
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_audit_search"
down_revision: str | None = "0005_audit_filters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_audit_event_status_search_trgm"


def _backfill_sql(sep: str, params_text: str) -> tuple[str, str]:
    """(event text, outcome text) for the rows already there, as app.audit.search builds
    them: fields lower-cased, each outcome's fields appended, joined by the separator."""
    # Only the constant separator and params expression are formatted in.
    event = f"""
UPDATE audit_event_status SET search = (
    SELECT lower(coalesce(e.actor, '') || {sep} || coalesce(e.action, '') || {sep}
        || coalesce(e.target, '') || {sep} || coalesce(e.event_id, '') || {sep}
        || coalesce(e.operation_id, '') || {sep} || {params_text})
    FROM audit_events e WHERE e.seq = audit_event_status.seq)
"""  # noqa: S608
    outcome = f"""
UPDATE audit_event_status SET search = search || (
    SELECT lower({sep} || coalesce(o.aws_request_id, '') || {sep}
        || coalesce(o.error_code, '') || {sep} || coalesce(o.error_message, ''))
    FROM audit_events o WHERE o.seq = audit_event_status.outcome_seq)
WHERE outcome_seq IS NOT NULL
"""  # noqa: S608
    return event, outcome


def upgrade() -> None:
    with op.batch_alter_table("audit_event_status") as batch:
        batch.add_column(sa.Column("search", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        params = (
            "CASE WHEN e.params IS NULL OR e.params::text = 'null' THEN '' ELSE e.params::text END"
        )
        statements = _backfill_sql("chr(31)", params)
    else:
        params = "CASE WHEN e.params IS NULL OR e.params = 'null' THEN '' ELSE e.params END"
        statements = _backfill_sql("char(31)", params)
    for statement in statements:
        op.execute(statement)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            INDEX,
            "audit_event_status",
            ["search"],
            postgresql_using="gin",
            postgresql_ops={"search": "gin_trgm_ops"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(INDEX, table_name="audit_event_status")
    with op.batch_alter_table("audit_event_status") as batch:
        batch.drop_column("search")
