"""Create-role wizard drafts (issue 3).

Revision ID: 0002_role_drafts
Revises: 0001_audit
Create Date: 2026-11-28 04:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_role_drafts"
down_revision: str | None = "0001_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "role_drafts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("operation_id", sa.String(length=36), nullable=True),
        sa.Column("role_arn", sa.String(length=2048), nullable=True),
        sa.Column("failure", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("role_drafts", schema=None) as batch_op:
        batch_op.create_index("ix_role_drafts_actor_status", ["actor", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_role_drafts_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("role_drafts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_drafts_expires_at"))
        batch_op.drop_index("ix_role_drafts_actor_status")
    op.drop_table("role_drafts")
