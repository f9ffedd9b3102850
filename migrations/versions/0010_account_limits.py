"""Per-user account limits: the AWS accounts a viewer or operator may work in.

`users.account_limit` holds 12-digit account ids separated by commas; empty (every existing
user, through the server default) means every account, so upgrading changes nobody's access.

Revision ID: 0010_account_limits
Revises: 0009_search_words
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_account_limits"
down_revision: str | None = "0009_search_words"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("account_limit", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("account_limit")
