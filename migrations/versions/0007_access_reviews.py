"""Access review records (issue 14): one row per decision (keep, change needed, remove), with
who, when, the note, when the next review falls due and the audit event that recorded it.

Revision ID: 0007_access_reviews
Revises: 0006_audit_search
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_access_reviews"
down_revision: str | None = "0006_audit_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("role_name", sa.String(length=64), nullable=False),
        sa.Column("role_arn", sa.String(length=2048), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audit_event_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_access_reviews_role_name", "access_reviews", ["role_name"])


def downgrade() -> None:
    op.drop_index("ix_access_reviews_role_name", table_name="access_reviews")
    op.drop_table("access_reviews")
