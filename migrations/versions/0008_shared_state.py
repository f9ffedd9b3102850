"""Shared state across processes (issue 16): the change log, stored inventories and SQLite's
refresh locks (app.shared).

Revision ID: 0008_shared_state
Revises: 0007_access_reviews
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_shared_state"
down_revision: str | None = "0007_access_reviews"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("inventory", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("item", sa.String(length=512), nullable=True),
        sa.Column("origin", sa.String(length=36), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_shared_changes_inventory_key_id", "shared_changes", ["inventory", "key", "id"]
    )
    op.create_table(
        "shared_inventories",
        sa.Column("inventory", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("inventory", "key"),
    )
    op.create_table(
        "shared_items",
        sa.Column("inventory", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("item", sa.String(length=512), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("inventory", "key", "item"),
    )
    op.create_table(
        "shared_locks",
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("holder", sa.String(length=36), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("shared_locks")
    op.drop_table("shared_items")
    op.drop_table("shared_inventories")
    op.drop_index("ix_shared_changes_inventory_key_id", table_name="shared_changes")
    op.drop_table("shared_changes")
