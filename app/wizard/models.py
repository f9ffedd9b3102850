"""The wizard's draft table: progress kept on the server, so a refresh, the back button, a
second worker process or a restart lose nothing (issue 3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class RoleDraft(Base):
    """One create-role wizard run.

    `data` holds the raw form values of each step ({"trust": {...}, "permissions": {...},
    "details": {...}}); they are validated again before create. `status` moves
    draft -> creating -> created | failed (failed may go back to creating on a retry); the
    move to `creating` is a compare-and-set UPDATE, so one request wins a double submit.
    """

    __tablename__ = "role_drafts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    operation_id: Mapped[str | None] = mapped_column(String(36))
    role_arn: Mapped[str | None] = mapped_column(String(2048))
    failure: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_role_drafts_actor_status", "actor", "status"),)
