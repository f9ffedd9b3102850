"""A BRIN index on the history's status table by seq (PostgreSQL only), so a text search that
the word index answers reads the newest part of the history first.

The word index finds every event with a role's name (thousands for a busy role, over years),
and a bitmap scan must read each one's heap block before it knows the newest 50: about 1,000
to 1,700 blocks, from disk when not cached (50-180 ms at 1,000,000 events). Rows are appended
in seq order, so a block range index on seq is tiny and exact enough to AND with the word
index's bitmap: asked for the newest seqs first (app.audit.query `_newest_first`), the scan
reads only the blocks of that range. 16 pages a range: the index stays a few hundred kB at a
million events and a range holds a few hundred events.

Revision ID: 0011_status_seq_brin
Revises: 0010_account_limits
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_status_seq_brin"
down_revision: str | None = "0010_account_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_audit_event_status_seq_brin"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX {INDEX} ON audit_event_status USING brin (seq) "
            "WITH (pages_per_range = 16)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX {INDEX}")
