"""Fixtures shared by the audit search tests: a migrated database on SQLite and on
PostgreSQL, and one audit log on it."""

from __future__ import annotations

import pytest

from app import migrate
from app.audit.log import AuditLog
from app.db import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    migrate.upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def log(db):
    """One log per database, as in the app (each keeps a writer connection on PostgreSQL)."""
    return AuditLog(db)
