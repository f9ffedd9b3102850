"""Shared fixtures: a real moto server over HTTP (state reset per test), real databases
(SQLite files; PostgreSQL databases created and dropped per test), and the ASGI app."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient

from app import migrate
from app.aws.sandbox import Sandbox
from app.main import create_app
from app.services import Services, build_services
from app.settings import Settings
from tests.sandbox_state import SandboxState

SANDBOX_REGION = "us-east-1"
POSTGRES_ADMIN_URL = os.environ.get(
    "ROLEDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Sandbox]:
    sandbox = Sandbox(0)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@dataclass(frozen=True)
class Templates:
    """What every test starts from, made once per session: the sandbox empty and seeded, and a
    migrated SQLite database with and without the seed's audit history."""

    empty: SandboxState
    seeded: SandboxState
    migrated_db: Path
    seeded_db: Path


# Database URLs copied from the seeded template: their sandbox is restored, not seeded again.
_SEEDED_COPIES: set[str] = set()


@pytest.fixture(scope="session")
def templates(moto_server: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Templates:
    from app.sandbox_seed import seed

    folder = tmp_path_factory.mktemp("templates")
    migrated_db = folder / "migrated.sqlite3"
    migrate.upgrade(f"sqlite:///{migrated_db}")
    seeded_db = folder / "seeded.sqlite3"
    shutil.copyfile(migrated_db, seeded_db)
    moto_server.reset()
    # Made now, as the first IAM call after a reset would make it: AWS managed policies loaded.
    boto3.client(
        "iam",
        endpoint_url=moto_server.endpoint_url,
        region_name=SANDBOX_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).list_roles()
    empty = SandboxState.take()
    built = build_services(
        Settings(database_url=f"sqlite:///{seeded_db}", mode="sandbox"),
        sandbox_endpoint=moto_server.endpoint_url,
    )
    seed(built)
    built.db.dispose()
    return Templates(empty, SandboxState.take(), migrated_db, seeded_db)


def _wants_seed(request: pytest.FixtureRequest) -> bool:
    return "seeded" in request.fixturenames


@pytest.fixture
def sandbox(moto_server: Sandbox, templates: Templates, request: pytest.FixtureRequest) -> Sandbox:
    """The moto server, emptied before the test (or already seeded, for tests that ask for
    `seeded`)."""
    (templates.seeded if _wants_seed(request) else templates.empty).restore()
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
def db_url(sqlite_url: str, templates: Templates, request: pytest.FixtureRequest) -> str:
    """A migrated SQLite database (a copy of the session's template: migrating takes ~1 s)."""
    target = Path(sqlite_url.removeprefix("sqlite:///"))
    if _wants_seed(request):
        shutil.copyfile(templates.seeded_db, target)
        _SEEDED_COPIES.add(sqlite_url)
    else:
        shutil.copyfile(templates.migrated_db, target)
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
def seeded(services: Services, templates: Templates) -> Services:
    """The example data: restored from the session's seeded template when the database is a copy
    of it; otherwise (PostgreSQL, a test's own database) seeded for real, audit history and all."""
    from app.sandbox_seed import seed

    if services.settings.database_url not in _SEEDED_COPIES:
        templates.empty.restore()
        seed(services)
    return services


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """argon2 at production cost takes ~0.2 s per hash here; tests sign in constantly, so
    they use the same algorithm with a small cost (as Django's test settings do)."""
    from argon2 import PasswordHasher

    from app.auth import users

    production = users.hasher
    users.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    users.hasher = production


TEST_PASSWORD = "correct horse battery staple"


@pytest.fixture
def web_app(seeded: Services):
    """The ASGI app on the seeded sandbox (one per test; clients share it)."""
    return create_app(seeded)


def add_user(app, name: str, role: str, password: str = TEST_PASSWORD) -> None:
    from app.audit.audited import AuditContext
    from app.auth.permissions import Role

    app.state.auth.users.add(AuditContext(actor="test"), name, Role.parse(role), password)


def sign_in(client: TestClient, name: str, password: str = TEST_PASSWORD, next_: str = "/roles"):
    """Signs in through the real sign-in form (CSRF token included); returns the response."""
    return client.post(
        "/sign-in",
        data={
            "name": name,
            "password": password,
            "next": next_,
            "csrf_token": csrf_token_for(client),
        },
        follow_redirects=False,
    )


@pytest.fixture
def client_as(web_app):
    """`client_as("viewer")`: a new TestClient signed in as a user with that in-app role
    (created on first use; pass name= for several users of one role)."""
    clients: list[TestClient] = []

    def make(role: str, name: str | None = None) -> TestClient:
        name = name or f"{role}-user"
        if web_app.state.auth.users.get(name) is None:
            add_user(web_app, name, role)
        test_client = TestClient(web_app)
        test_client.__enter__()
        clients.append(test_client)
        response = sign_in(test_client, name)
        assert response.status_code == 303, response.text
        return test_client

    yield make
    for test_client in clients:
        test_client.__exit__(None, None, None)


@pytest.fixture
def client(client_as) -> TestClient:
    """Signed in as an admin (user `admin`), so it may do everything."""
    return client_as("admin", "admin")


@pytest.fixture
def anonymous_client(web_app) -> Iterator[TestClient]:
    with TestClient(web_app) as test_client:
        yield test_client


@contextmanager
def signed_in(app, name: str = "admin", role: str = "admin") -> Iterator[TestClient]:
    """A TestClient on `app` signed in through the form (the user is created if needed)."""
    with TestClient(app) as test_client:
        if app.state.auth.users.get(name) is None:
            add_user(app, name, role)
        response = sign_in(test_client, name)
        assert response.status_code == 303, response.text
        yield test_client


def csrf_token_for(client: TestClient) -> str:
    """The CSRF token the app gave this client (fetching a page first if needed)."""
    from app.web.csrf import COOKIE

    if COOKIE not in client.cookies:
        client.get("/sign-in")
    return str(client.cookies[COOKIE])


@pytest.fixture
def ec2_client(sandbox: Sandbox):
    """A plain boto3 EC2 client on the sandbox, for reading back what RoleDesk did."""
    return boto3.client(
        "ec2",
        endpoint_url=sandbox.endpoint_url,
        region_name=SANDBOX_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def ids(seeded: Services) -> dict[str, str]:
    """The seeded instances' ids by Name tag."""
    return {i.name: i.instance_id for i in seeded.ec2().list_instances()}


class FakeTime:
    """Injected sleep and clock: retries wait without the test waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now
