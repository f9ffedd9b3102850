"""Audit viewer: current outcome per event, and a time index.

`audit_event_status` is a derived index over the ledger (one row per intent or record entry,
with its latest outcome), so the history can filter by outcome without scanning the ledger.
It is filled from the existing entries here and rebuilt by `roledesk audit reindex`.

Revision ID: 0004_audit_viewer
Revises: 0003_users_sessions
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_audit_viewer"
down_revision: str | None = "0003_users_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
INSERT INTO audit_event_status (seq, event_id, outcome, outcome_seq)
SELECT e.seq, e.event_id,
       COALESCE(o.outcome, CASE WHEN e.kind = 'intent' THEN 'pending' ELSE e.outcome END),
       o.seq
FROM audit_events e
LEFT JOIN audit_events o ON o.seq = (
    SELECT MAX(x.seq) FROM audit_events x WHERE x.event_id = e.event_id AND x.kind = 'outcome'
)
WHERE e.kind IN ('intent', 'record')
"""


def upgrade() -> None:
    op.create_table(
        "audit_event_status",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outcome_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("audit_event_status", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_status_outcome_seq", ["outcome", "seq"], unique=False)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_recorded_at", ["recorded_at"], unique=False)
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_recorded_at")
    with op.batch_alter_table("audit_event_status", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_status_outcome_seq")
    op.drop_table("audit_event_status")
