"""The access review's table: one row per review decision, never updated (the latest row per
role is its current review)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class AccessReview(Base):
    __tablename__ = "access_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    role_name: Mapped[str] = mapped_column(String(64), index=True)
    role_arn: Mapped[str] = mapped_column(String(2048))
    decision: Mapped[str] = mapped_column(String(16))  # keep | change | remove
    note: Mapped[str] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(200))
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    audit_event_id: Mapped[str] = mapped_column(String(36))
