"""An organization in the sandbox: the default account as management (hub) account and three
seeded member accounts (app.sandbox_seed.seed_organization).

Seeding it costs moto one IAM backend per member account (each loads the 1,582 AWS managed
policies), so the organization is made once for this package (no test here resets the
sandbox) and each test uses names of its own. Tests that hook botocore events build their
own AwsClients, so hooks do not outlive them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from app import migrate
from app.accounts.hub import AccountHub
from app.accounts.model import Account
from app.aws.clients import AwsClients
from app.aws.sandbox import Sandbox
from app.sandbox_seed import seed_organization
from app.services import Services, build_services
from app.settings import Settings


@pytest.fixture(scope="package")
def org_seeded(
    moto_server: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Services, list[str]]]:
    """Services on a sandbox holding the organization, and the member ids (module-wide)."""
    moto_server.reset()
    url = f"sqlite:///{tmp_path_factory.mktemp('org') / 'roledesk.sqlite3'}"
    migrate.upgrade(url)
    built = build_services(
        Settings(database_url=url, mode="sandbox"), sandbox_endpoint=moto_server.endpoint_url
    )
    yield built, seed_organization(built)
    built.db.dispose()


@pytest.fixture(scope="package")
def org(org_seeded: tuple[Services, list[str]]) -> Services:
    return org_seeded[0]


@pytest.fixture(scope="package")
def members(org_seeded: tuple[Services, list[str]]) -> list[str]:
    """The member account ids, in MEMBER_ACCOUNTS order (Development, Staging, Production)."""
    return org_seeded[1]


@contextmanager
def own_database(seeded: Services, folder: Path) -> Iterator[Services]:
    """Services on the package's organization with a database of their own (for modules
    whose audit records must not mix with the others')."""
    url = f"sqlite:///{folder / 'roledesk.sqlite3'}"
    migrate.upgrade(url)
    built = build_services(
        seeded.settings.model_copy(update={"database_url": url}),
        sandbox_endpoint=seeded.sandbox_endpoint,
    )
    yield built
    built.db.dispose()


def fresh_clients(services: Services) -> AwsClients:
    return AwsClients(region="us-east-1", endpoint_url=services.sandbox_endpoint, sandbox=True)


@pytest.fixture
def hub(org: Services) -> AccountHub:
    """A hub with clients of its own (hooks registered by a test stay in the test)."""
    return AccountHub(org.settings, fresh_clients(org), org.identity.account)


def account(hub: AccountHub, account_id: str) -> Account:
    found = hub.accounts().find(account_id)
    assert found is not None
    return found


class Refuse:
    """AWS refusing one call (AssumeRole into a role that does not trust the hub, ListAccounts
    without permission): moto never refuses these (it evaluates no trust or identity
    policies), so AWS's answer is returned from botocore's before-call hook, as botocore's
    Stubber does. `when` picks the requests refused by their parameters."""

    def __init__(self, when: dict[str, str], message: str = "not authorized") -> None:
        self.when = when
        self.message = message
        self.refused = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> Any:
        body = params.get("body") or {}
        if isinstance(body, dict) and any(body.get(k) != v for k, v in self.when.items()):
            return None
        self.refused += 1
        error = {
            "Error": {"Code": "AccessDenied", "Message": self.message},
            "ResponseMetadata": {"RequestId": f"refused-{self.refused}", "HTTPStatusCode": 403},
        }
        return AWSResponse("https://aws.example/", 403, {}, None), error
