"""Security tests run on both databases: `db_url` here replaces the SQLite-only one from
tests/conftest.py, so every fixture built on it (services, web_app, clients) runs twice."""

from __future__ import annotations

import pytest

from app import migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url = str(request.getfixturevalue(fixture))
    migrate.upgrade(url)
    return url
