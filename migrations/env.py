"""Alembic environment. The URL comes from the Alembic config (set by `roledesk db upgrade`
from settings) and the models from app.models, so `alembic check` compares them."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.db import Base
from app.models import STATUS_PARTITIONS
from app.settings import Settings

config = context.config
target_metadata = Base.metadata


# PostgreSQL's generated word column of the audit search and its index (migration
# 0009_search_words): the models cannot declare a column for one database only, and no code
# writes it (PostgreSQL computes it), so the comparison leaves them out.
DATABASE_ONLY = frozenset({"search_words", "ix_audit_event_status_search_words"})
# PostgreSQL keeps the status table in two partitions (migration 0012_status_settled_apart),
# each with its own copies of the indexes, primary key and event_id's unique constraint: a
# partitioned table cannot have a unique constraint without its partition key. The table
# itself is compared as the models declare it; its partitions and that constraint are not.
PARTITIONS = frozenset(STATUS_PARTITIONS)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave out indexes the models declare for other databases only (a pg_trgm index on
    SQLite), PostgreSQL's generated search words and the status table's partitions, so
    `alembic check` compares like with like."""
    if reflected and compare_to is None and name in DATABASE_ONLY:
        return False
    owner = getattr(getattr(obj, "table", None), "name", None)  # an index's or constraint's
    if reflected and (name in PARTITIONS or owner in PARTITIONS):
        return False
    postgresql = context.get_context().dialect.name == "postgresql"
    if type_ == "unique_constraint" and postgresql and not reflected and compare_to is None:
        columns = [c.name for c in getattr(obj, "columns", ())]
        if owner == "audit_event_status" and columns == ["event_id"]:
            return False
    if type_ != "index" or reflected:
        return True
    dialects = getattr(obj, "info", {}).get("dialects")
    return dialects is None or context.get_context().dialect.name in dialects


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(
            connection=connectable,
            target_metadata=target_metadata,
            render_as_batch=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        {"sqlalchemy.url": _url()}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
