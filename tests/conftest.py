"""Shared fixtures: a real moto server over HTTP (state reset per test), real databases
(SQLite files; PostgreSQL databases created and dropped per test), and the ASGI app."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import migrate
from app.aws.sandbox import Sandbox
from app.main import create_app
from app.services import Services, build_services
from app.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "ROLEDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Sandbox]:
    sandbox = Sandbox(0)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(moto_server: Sandbox) -> Sandbox:
    """The moto server, emptied before the test."""
    moto_server.reset()
    return moto_server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'roledesk.sqlite3'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"roledesk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """A migrated SQLite database."""
    migrate.upgrade(sqlite_url)
    return sqlite_url


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, mode="sandbox", role_cache_seconds=900)


@pytest.fixture
def services(settings: Settings, sandbox: Sandbox) -> Iterator[Services]:
    built = build_services(settings, sandbox_endpoint=sandbox.endpoint_url)
    yield built
    built.db.dispose()


@pytest.fixture
def seeded(services: Services) -> Services:
    from app.sandbox_seed import seed

    seed(services)
    return services


@pytest.fixture
def client(seeded: Services) -> Iterator[TestClient]:
    with TestClient(create_app(seeded)) as test_client:
        yield test_client


def csrf_token_for(client: TestClient) -> str:
    """The CSRF token the app gave this client (fetching a page first if needed)."""
    from app.web.csrf import COOKIE

    if COOKIE not in client.cookies:
        client.get("/roles")
    return str(client.cookies[COOKIE])
