"""The history's status table in two partitions on PostgreSQL: pending events apart from
settled ones, so settled events stay in the order they were written.

An event's status row is written with its intent (`pending`) and rewritten with its outcome.
Each rewrite leaves a dead row behind; vacuum frees it and PostgreSQL later puts new rows into
that space, in older pages. Over months the newest events end up spread over the whole table:
at 1,000,000 events written this way, a text search for a busy role's name read 58-82 ms
(p95, blocks not cached) against 15-24 ms for the same history in order, and the BRIN index
on seq (0011) lost its point. `CLUSTER` put it back, for a while, under an exclusive lock.

Partitioned by outcome, with `pending` in a small partition of its own: the outcome's rewrite
moves the row (a delete there, an insert here) into the settled partition, which only ever
gets inserts, so it has no dead rows, vacuum frees no space in it, and rows stay in the order
their outcomes arrived (seq order, give or take the calls made side by side). The pending
partition holds only the calls in flight; its churn stays in a few cached pages.

A partitioned table's primary key and unique constraints must include the partition key, so
each partition has its own (seq and event_id unique within it; a row is in one partition at a
time and the ledger, `audit_events`, keeps both unique anyway). Queries are unchanged: they
read `audit_event_status`, and PostgreSQL reads the partitions and merges them.

The upgrade copies the table and rebuilds its indexes (102 s at a million events on a 2-vCPU
machine, the downgrade 101 s: appends and history pages wait meanwhile); SQLite is unchanged
(a row rewritten there stays where it was).

Revision ID: 0012_status_settled_apart
Revises: 0011_status_seq_brin
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_status_settled_apart"
down_revision: str | None = "0011_status_seq_brin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "seq, event_id, outcome, outcome_seq, actor, action, target, search"
# As migration 0009 made it (migrations keep their own copy).
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
    search_words tsvector GENERATED ALWAYS AS ({WORDS}) STORED
"""
# Every index of the table (0005, 0006, 0009, 0011), made on the parent (PostgreSQL makes one
# per partition); created after the copy, which is faster than keeping them up to date.
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


def _copy_into_new_table(partitioned: bool) -> None:
    op.execute("ALTER TABLE audit_event_status RENAME TO audit_event_status_old")
    for index in INDEXES:  # their names are needed for the new table's
        op.execute(f"DROP INDEX {index.split()[0]}")
    by = " PARTITION BY LIST (outcome)" if partitioned else ""
    op.execute(f"CREATE TABLE audit_event_status ({TABLE}){by}")
    if partitioned:
        for name, bounds in PARTITIONS.items():
            op.execute(f"CREATE TABLE {name} PARTITION OF audit_event_status {bounds}")
            op.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_pkey PRIMARY KEY (seq)")
            op.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_event_id_key UNIQUE (event_id)")
    op.execute(
        f"INSERT INTO audit_event_status ({COLUMNS}) "  # noqa: S608 (constant names only)
        f"SELECT {COLUMNS} FROM audit_event_status_old ORDER BY seq"
    )
    op.execute("DROP TABLE audit_event_status_old")
    if not partitioned:
        op.execute("ALTER TABLE audit_event_status ADD PRIMARY KEY (seq)")
        op.execute("ALTER TABLE audit_event_status ADD UNIQUE (event_id)")
    for index in INDEXES:
        if not partitioned:
            op.execute(f"CREATE INDEX {index}")
            continue
        # Each partition's copy named after its partition (what EXPLAIN shows), attached to
        # the parent's index (which `alembic check` compares with the models).
        name, definition = index.split(" ON audit_event_status ")
        op.execute(f"CREATE INDEX {name} ON ONLY audit_event_status {definition}")
        for partition in PARTITIONS:
            copy = name.replace("audit_event_status", partition)
            op.execute(f"CREATE INDEX {copy} ON {partition} {definition}")
            op.execute(f"ALTER INDEX {name} ATTACH PARTITION {copy}")
    op.execute("ANALYZE audit_event_status")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _copy_into_new_table(partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _copy_into_new_table(partitioned=False)
