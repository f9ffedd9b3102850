"""A member account's lists are shared between processes like the hub's (issues 16 and 17):
stored under the account's id, read from AWS by one process and taken by the others, and a
change made through one process is seen by the others at once, in that account only. Each
"process" is its own Services, AccountServices and hub on one real database (SQLite,
PostgreSQL), over the sandbox organization."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import migrate
from app.accounts.context import AccountServices
from app.accounts.hub import AccountHub
from app.audit.audited import AuditContext, Change
from app.services import Services, build_services
from tests.accounts.conftest import fresh_clients
from tests.security.aws_calls import AwsCalls

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@pytest.fixture(params=["sqlite", "postgres"])
def processes(
    request: pytest.FixtureRequest, org: Services, tmp_path: Path
) -> Iterator[list[tuple[AccountServices, AwsCalls]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'roledesk.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrate.upgrade(url)
    made: list[tuple[AccountServices, AwsCalls]] = []
    for _ in range(2):
        base = build_services(
            org.settings.model_copy(update={"database_url": url}),
            sandbox_endpoint=org.sandbox_endpoint,
        )
        hub = AccountHub(org.settings, fresh_clients(org), org.identity.account)
        calls = AwsCalls()
        hub.hub_clients.hook_every_client("before-call", calls)
        made.append((AccountServices(base, lambda hub=hub: hub), calls))  # type: ignore[misc]
    yield made
    for accounts, _ in made:
        accounts.base.db.dispose()


def test_a_member_accounts_roles_list_is_read_once_and_changes_are_seen_everywhere(
    processes, members, request
):
    (a, a_calls), (b, b_calls) = processes
    member = members[1]
    in_a, in_b = a.for_account(member, "alice"), b.for_account(member, "alice")
    total = in_a.inventory.page().total
    assert a_calls.count("ListRoles") == 1
    assert in_b.inventory.page().total == total
    assert b_calls.count("ListRoles") == 0  # b took a's stored list

    name = f"Shared-Member-{request.node.callspec.id}"
    in_a.audited.call(
        AuditContext(actor="alice"),
        Change(f"arn:aws:iam::{member}:role/{name}", account_id=member),
        in_a.iam.create_role,
        name=name,
        trust_policy=TRUST,
    )
    in_a.inventory.settle()  # as the operations engine does before a run ends
    found = in_b.inventory.find(name.lower())
    assert found is not None and found.name == name
    assert b_calls.count("ListRoles") == 0
    # The member's role is not in the hub's list, nor in another member account's.
    assert b.base.inventory.find(name) is None
    assert b.for_account(members[0], "alice").inventory.find(name) is None


def test_a_member_accounts_instances_are_stored_apart_from_the_hubs(processes, members):
    (a, a_calls), (b, b_calls) = processes
    member = members[2]
    region = "us-east-1"
    mine = a.for_account(member, "alice").instances.snapshot(region)
    assert a_calls.count("DescribeInstances") == 1
    theirs = b.for_account(member, "alice").instances.snapshot(region)
    assert b_calls.count("DescribeInstances") == 0  # b took a's stored read
    assert [i.instance_id for i in theirs.instances] == [i.instance_id for i in mine.instances]
    hub_ids = {i.instance_id for i in b.base.instances.snapshot(region).instances}
    assert hub_ids.isdisjoint(i.instance_id for i in mine.instances) or not mine.instances
