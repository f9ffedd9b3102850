"""Security tests run on both databases: `db_url` here replaces the SQLite-only one from
tests/conftest.py, so every fixture built on it (services, web_app, clients) runs twice; and
`aws_calls`, which counts the AWS calls the app makes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app import migrate
from tests.security.aws_calls import AwsCalls


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url = str(request.getfixturevalue(fixture))
    migrate.upgrade(url)
    return url


@pytest.fixture
def aws_calls(seeded) -> Iterator[AwsCalls]:
    """Every AWS call the app makes from here on (a botocore hook on the sandbox clients)."""
    recorder = AwsCalls()
    clients = seeded.clients
    for service in ("iam", "ec2", "sts"):
        clients.client(service)
    for client in clients._cache.values():
        client.meta.events.register("before-call", recorder)
    yield recorder
    for client in clients._cache.values():
        client.meta.events.unregister("before-call", recorder)
