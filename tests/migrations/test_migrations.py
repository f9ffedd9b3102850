"""Migrations up and down on SQLite and PostgreSQL, `alembic check`, and the append-only
triggers on the audit ledger."""

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from app import migrate
from app.audit.log import AuditLog, NewEntry
from app.db import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request):
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


def tables(url):
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_check_downgrade_upgrade(any_db_url):
    migrate.upgrade(any_db_url)
    assert "audit_events" in tables(any_db_url)
    migrate.check(any_db_url)  # raises when models and migrations differ
    migrate.check_at_head(any_db_url)
    migrate.downgrade(any_db_url, "base")
    assert tables(any_db_url) <= {"alembic_version"}
    with pytest.raises(migrate.NotAtHead):
        migrate.check_at_head(any_db_url)
    migrate.upgrade(any_db_url)
    migrate.check(any_db_url)


def test_ledger_refuses_update_and_delete(any_db_url):
    migrate.upgrade(any_db_url)
    db = Database(any_db_url)
    try:
        AuditLog(db).append(NewEntry(kind="record", action="test", actor="a", outcome="succeeded"))
        for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
            with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
                conn.execute(text(statement))
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT actor FROM audit_events")).scalar_one() == "a"
    finally:
        db.dispose()


def test_account_limits_migration_keeps_users_unlimited(any_db_url):
    """0010 adds the account limit empty for existing users (every account) and drops it."""
    migrate.upgrade(any_db_url, "0009_search_words")
    engine = create_engine(any_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (name, name_key, role, password_hash, disabled, "
                    "created_at, updated_at) VALUES ('op', 'op', 'operator', 'x', false, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        migrate.upgrade(any_db_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT account_limit FROM users")).scalar_one() == ""
        migrate.downgrade(any_db_url, "0009_search_words")
        columns = {c["name"] for c in inspect(engine).get_columns("users")}
        assert "account_limit" not in columns and "role" in columns
    finally:
        engine.dispose()
