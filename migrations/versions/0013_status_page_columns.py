"""Every column the history lists, copied into its status table: a page reads one table.

A history page used to read, for each of its 50 events, the status row and then the ledger's
intent and outcome entries by seq: about five block reads an event, which on PostgreSQL with
a million events and blocks not cached kept a text search's p95 at 17-25 ms (issue 15's target
is 20). The status row now also holds the event entry's kind, time, operation, source address,
account and region, and its latest outcome entry's time, request id and error, written in the
same statements that write the row (app.audit.status_rows); the page's rows come from the
status table alone, in seq order.

PostgreSQL: the table is copied into a new one with the columns filled from the ledger, in seq
order, and its indexes rebuilt after (like 0012, whose partitioning it keeps): 231 s at a
million events on a slow 2-vCPU machine, under an exclusive lock (appends and history pages
wait). An UPDATE in
place would instead leave every row's old version behind and write each of the eleven indexes
once more per row. The downgrade drops the columns (no rewrite). SQLite: the columns are added
and filled in place.

Revision ID: 0013_status_page_columns
Revises: 0012_status_settled_apart
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_status_page_columns"
down_revision: str | None = "0012_status_settled_apart"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# New column: (its type, the ledger column it copies, from the event's entry "e" or its latest
# outcome's "o"). Migrations keep their own copy of what app.audit.status_rows says.
NEW_COLUMNS = {
    "kind": (sa.String(16), "e.kind"),
    "recorded_at": (sa.DateTime(timezone=True), "e.recorded_at"),
    "operation_id": (sa.String(36), "e.operation_id"),
    "source_ip": (sa.String(64), "e.source_ip"),
    "account_id": (sa.String(12), "e.account_id"),
    "region": (sa.String(32), "e.region"),
    "completed_at": (sa.DateTime(timezone=True), "o.recorded_at"),
    "aws_request_id": (sa.String(128), "o.aws_request_id"),
    "error_code": (sa.String(128), "o.error_code"),
    "error_message": (sa.Text(), "o.error_message"),
}
NOT_NULL = ("kind", "recorded_at")

OLD_COLUMNS = "seq, event_id, outcome, outcome_seq, actor, action, target, search"
# As migration 0009 made it.
WORDS = "array_to_tsvector(array_remove(regexp_split_to_array(search, '[^a-z0-9]+'), ''))"
TABLE = f"""
    seq BIGINT NOT NULL,
    event_id VARCHAR(36) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    outcome_seq BIGINT,
    actor VARCHAR(200) NOT NULL,
    action VARCHAR(128) NOT NULL,
    target VARCHAR(2048),
    search TEXT,
    search_words tsvector GENERATED ALWAYS AS ({WORDS}) STORED,
    kind VARCHAR(16) NOT NULL,
    recorded_at TIMESTAMP WITH TIME ZONE NOT NULL,
    operation_id VARCHAR(36),
    source_ip VARCHAR(64),
    account_id VARCHAR(12),
    region VARCHAR(32),
    completed_at TIMESTAMP WITH TIME ZONE,
    aws_request_id VARCHAR(128),
    error_code VARCHAR(128),
    error_message TEXT
"""
# Every index of the table (0005, 0006, 0009, 0011), on the parent and each partition (0012).
INDEXES = [
    "ix_audit_event_status_outcome_seq ON audit_event_status (outcome, seq)",
    "ix_audit_event_status_actor_seq ON audit_event_status (actor, seq)",
    "ix_audit_event_status_action_seq ON audit_event_status (action, seq)",
    "ix_audit_event_status_target_seq ON audit_event_status (target, seq)",
    "ix_audit_event_status_actor_outcome_seq ON audit_event_status (actor, outcome, seq)",
    "ix_audit_event_status_action_outcome_seq ON audit_event_status (action, outcome, seq)",
    "ix_audit_event_status_actor_action_seq ON audit_event_status (actor, action, seq)",
    "ix_audit_event_status_actor_action_outcome_seq "
    "ON audit_event_status (actor, action, outcome, seq)",
    "ix_audit_event_status_search_trgm ON audit_event_status USING gin (search gin_trgm_ops)",
    "ix_audit_event_status_search_words ON audit_event_status USING gin (search_words)",
    "ix_audit_event_status_seq_brin ON audit_event_status USING brin (seq) "
    "WITH (pages_per_range = 16)",
]
PARTITIONS = {
    "audit_event_status_pending": "FOR VALUES IN ('pending')",
    "audit_event_status_settled": "DEFAULT",
}
FILLED = ", ".join(source for _, source in NEW_COLUMNS.values())


def _upgrade_postgresql() -> None:
    # The old table and its partitions out of the way of the new ones' names; their keys and
    # indexes are not needed for the copy.
    op.execute("ALTER TABLE audit_event_status RENAME TO audit_event_status_old")
    for name in PARTITIONS:
        op.execute(
            f"ALTER TABLE {name} DROP CONSTRAINT {name}_pkey, DROP CONSTRAINT {name}_event_id_key"
        )
        op.execute(f"ALTER TABLE {name} RENAME TO {name}_old")
    for index in INDEXES:
        op.execute(f"DROP INDEX {index.split()[0]}")
    op.execute(f"CREATE TABLE audit_event_status ({TABLE}) PARTITION BY LIST (outcome)")
    for name, bounds in PARTITIONS.items():
        op.execute(f"CREATE TABLE {name} PARTITION OF audit_event_status {bounds}")
    columns = ", ".join(f"s.{column}" for column in OLD_COLUMNS.split(", "))
    op.execute(
        f"INSERT INTO audit_event_status ({OLD_COLUMNS}, {', '.join(NEW_COLUMNS)}) "  # noqa: S608
        f"SELECT {columns}, {FILLED} FROM audit_event_status_old s "
        "JOIN audit_events e ON e.seq = s.seq "
        "LEFT JOIN audit_events o ON o.seq = s.outcome_seq ORDER BY s.seq"
    )
    op.execute("DROP TABLE audit_event_status_old")  # and its partitions
    for name in PARTITIONS:
        op.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_pkey PRIMARY KEY (seq)")
        op.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_event_id_key UNIQUE (event_id)")
    for index in INDEXES:
        # Each partition's copy named after its partition, attached to the parent's (0012).
        name, definition = index.split(" ON audit_event_status ")
        op.execute(f"CREATE INDEX {name} ON ONLY audit_event_status {definition}")
        for partition in PARTITIONS:
            copy = name.replace("audit_event_status", partition)
            op.execute(f"CREATE INDEX {copy} ON {partition} {definition}")
            op.execute(f"ALTER INDEX {name} ATTACH PARTITION {copy}")
    op.execute("ANALYZE audit_event_status")


def _upgrade_sqlite() -> None:
    with op.batch_alter_table("audit_event_status") as batch:
        for column, (kind, _) in NEW_COLUMNS.items():
            batch.add_column(sa.Column(column, kind, nullable=True))
    # Each value looked up by seq (the ledger's primary key): the event's entry, and its
    # latest outcome's.
    row = {"e": "audit_event_status.seq", "o": "audit_event_status.outcome_seq"}
    sets = ", ".join(
        f"{column} = (SELECT {source} FROM audit_events {source[0]} "  # noqa: S608 (names)
        f"WHERE {source[0]}.seq = {row[source[0]]})"
        for column, (_, source) in NEW_COLUMNS.items()
    )
    op.execute(f"UPDATE audit_event_status SET {sets}")  # noqa: S608 (constant names only)
    with op.batch_alter_table("audit_event_status") as batch:
        for column in NOT_NULL:
            batch.alter_column(column, existing_type=NEW_COLUMNS[column][0], nullable=False)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    with op.batch_alter_table("audit_event_status") as batch:
        for column in reversed(NEW_COLUMNS):
            batch.drop_column(column)
