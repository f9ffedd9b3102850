"""Tables of the shared state (app.shared.state): the change log every process follows, the
stored inventories a new process starts from, and the refresh locks of SQLite.

An inventory is named (`roles`, `instances`, ...) and keyed (empty for one account; issue 17
keys inventories per account), so the same tables serve every inventory.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class SharedChange(Base):
    """One change notice: `item` of inventory (`inventory`, `key`) changed (its stored row is
    the new state, no row: gone), or the whole inventory was reloaded (`item` NULL).

    Written in the transaction that changes the stored inventory; ids are handed out in commit
    order (app.shared.state takes a lock first), so "everything after id N" misses nothing."""

    __tablename__ = "shared_changes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    inventory: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    item: Mapped[str | None] = mapped_column(String(512))
    origin: Mapped[str] = mapped_column(String(36))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_shared_changes_inventory_key_id", "inventory", "key", "id"),)


class SharedInventory(Base):
    """A stored inventory: when it was last read from AWS in full."""

    __tablename__ = "shared_inventories"

    inventory: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SharedItem(Base):
    """One item of a stored inventory (a role, ...) as JSON text."""

    __tablename__ = "shared_items"

    inventory: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    item: Mapped[str] = mapped_column(String(512), primary_key=True)
    data: Mapped[str] = mapped_column(Text)


class SharedLock(Base):
    """SQLite's stand-in for PostgreSQL's advisory lock: who refreshes an inventory now, until
    when (a lease, so a process that died does not block the others for good)."""

    __tablename__ = "shared_locks"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    holder: Mapped[str] = mapped_column(String(36))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
