"""Audit filters: the derived index carries actor, action and target, with composite indexes.

A page filtered on several columns at once (a busy actor's failed DeleteRole calls) had to walk
thousands of entries of one single-column index and look each up in another table. The derived
`audit_event_status` table now holds each event's actor, action and target next to its current
outcome, with one (filters..., seq) index per combination, so every combination is one index
walk that stops after a page. The table is derived from the ledger, so it is dropped and
rebuilt here (as `roledesk audit reindex` does); the ledger is not touched except that its
actor/action/target indexes, which only the filters used, are dropped (fewer index writes per
append).

Revision ID: 0005_audit_filters
Revises: 0004_audit_viewer
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_audit_filters"
down_revision: str | None = "0004_audit_viewer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER_INDEXES = {
    "ix_audit_events_action_seq": ["action", "seq"],
    "ix_audit_events_target_seq": ["target", "seq"],
    "ix_audit_events_actor_seq": ["actor", "seq"],
}
STATUS_INDEXES = {
    "ix_audit_event_status_outcome_seq": ["outcome", "seq"],
    "ix_audit_event_status_actor_seq": ["actor", "seq"],
    "ix_audit_event_status_action_seq": ["action", "seq"],
    "ix_audit_event_status_target_seq": ["target", "seq"],
    "ix_audit_event_status_actor_outcome_seq": ["actor", "outcome", "seq"],
    "ix_audit_event_status_action_outcome_seq": ["action", "outcome", "seq"],
    "ix_audit_event_status_actor_action_seq": ["actor", "action", "seq"],
    "ix_audit_event_status_actor_action_outcome_seq": ["actor", "action", "outcome", "seq"],
}

BACKFILL = """
INSERT INTO audit_event_status (seq, event_id, outcome, outcome_seq, actor, action, target)
SELECT e.seq, e.event_id,
       COALESCE(o.outcome, CASE WHEN e.kind = 'intent' THEN 'pending' ELSE e.outcome END),
       o.seq, e.actor, e.action, e.target
FROM audit_events e
LEFT JOIN audit_events o ON o.seq = (
    SELECT MAX(x.seq) FROM audit_events x WHERE x.event_id = e.event_id AND x.kind = 'outcome'
)
WHERE e.kind IN ('intent', 'record')
"""

OLD_BACKFILL = """
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


def _create_status(extra: list[sa.Column[object]], indexes: dict[str, list[str]]) -> None:
    op.create_table(
        "audit_event_status",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outcome_seq", sa.BigInteger(), nullable=True),
        *extra,
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
    )
    for name, columns in indexes.items():
        op.create_index(name, "audit_event_status", columns, unique=False)


def upgrade() -> None:
    op.drop_table("audit_event_status")
    _create_status(
        [
            sa.Column("actor", sa.String(length=200), nullable=False),
            sa.Column("action", sa.String(length=128), nullable=False),
            sa.Column("target", sa.String(length=2048), nullable=True),
        ],
        STATUS_INDEXES,
    )
    op.execute(BACKFILL)
    for name in LEDGER_INDEXES:
        op.drop_index(name, table_name="audit_events")


def downgrade() -> None:
    for name, columns in LEDGER_INDEXES.items():
        op.create_index(name, "audit_events", columns, unique=False)
    op.drop_table("audit_event_status")
    _create_status([], {"ix_audit_event_status_outcome_seq": ["outcome", "seq"]})
    op.execute(OLD_BACKFILL)
