"""Hub and spoke against the sandbox organization: accounts from Organizations (every page)
or configuration, clients per member account through the spoke role, one unreachable account
reported with AWS's error while the others keep working."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from app.accounts.hub import AccountHub
from app.accounts.model import CONFIGURATION, ORGANIZATIONS
from app.audit.audited import AuditContext, Change
from app.aws.errors import AwsError
from app.aws.organizations import OrganizationsGateway
from app.sandbox_seed import ACTOR as SEED_ACTOR
from app.sandbox_seed import MEMBER_ACCOUNTS, member_instances, member_roles, seed_organization
from app.services import Services
from app.settings import AccountsSource, ConfiguredAccount
from tests.accounts.conftest import Refuse, account, fresh_clients
from tests.security.aws_calls import AwsCalls


def role_names(services: Services, account_id: str) -> set[str]:
    """The roles of `account_id`, read with plain boto3 through the setup role."""
    sts = fresh_clients(services).client("sts")
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="test-reader",
    )["Credentials"]
    iam = boto3.client(
        "iam",
        endpoint_url=services.sandbox_endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return {r["RoleName"] for r in iam.list_roles()["Roles"]}


def test_the_sandbox_organization_has_three_seeded_members(
    org: Services, hub: AccountHub, members: list[str]
):
    listed = hub.accounts()
    assert listed.source == ORGANIZATIONS
    assert listed.accounts[0].account_id == org.identity.account
    assert listed.accounts[0].is_hub
    assert {a.account_id for a in listed.accounts[1:]} == set(members)
    assert len(set(members)) == 3
    for (name, short), member in zip(MEMBER_ACCOUNTS, members, strict=True):
        expected = {r.name for r in member_roles(short, org.identity.account)}
        # Other tests of this package make roles in the same accounts (and may run first).
        assert expected | {"RoleDeskAccess", "OrganizationAccountAccessRole"} <= role_names(
            org, member
        )
        names = {i.name for i in hub.ec2(account(hub, member), "alice").list_instances()}
        assert names == {n for n, *_ in member_instances(short)}
        assert account(hub, member).name == name
    # The default (hub) account's own seed is not the organization seed's business.
    assert role_names(org, org.identity.account).isdisjoint({"ReadOnlyAuditor"})


def test_seeding_again_changes_nothing(org: Services, members: list[str]):
    assert seed_organization(org) == []
    assert len(OrganizationsGateway(org.clients).list_accounts()) == 4


def test_every_seed_change_in_a_member_account_is_audited_with_that_account(
    org: Services, members: list[str]
):
    from sqlalchemy import select

    from app.models import AuditEvent

    with org.db.sessions() as session:
        rows = session.scalars(
            select(AuditEvent).where(
                AuditEvent.kind == "intent",
                AuditEvent.action == "iam:CreateRole",
                AuditEvent.actor == SEED_ACTOR,  # not the roles other tests make there
            )
        ).all()
        by_account = {}
        for row in rows:
            by_account.setdefault(row.account_id, set()).add(row.target.rsplit("/", 1)[-1])
    for (_, short), member in zip(MEMBER_ACCOUNTS, members, strict=True):
        expected = {r.name for r in member_roles(short, org.identity.account)}
        assert by_account[member] == expected | {"RoleDeskAccess"}


def test_member_calls_run_as_the_spoke_role_with_the_user_in_the_session_name(
    hub: AccountHub, members: list[str]
):
    prod = account(hub, members[2])
    arn = hub.clients(prod, "alice@example.com").client("sts").get_caller_identity()["Arn"]
    assert (
        arn == f"arn:aws:sts::{members[2]}:assumed-role/RoleDeskAccess/roledesk-alice@example.com"
    )


def test_a_role_created_in_a_member_account_is_in_that_account_only(
    org: Services, hub: AccountHub, members: list[str]
):
    dev = account(hub, members[0])
    iam = hub.iam(dev, "alice")
    org.audited.call(
        AuditContext(actor="alice"),
        Change(f"arn:aws:iam::{dev.account_id}:role/only-in-dev", account_id=dev.account_id),
        iam.create_role,
        name="only-in-dev",
        trust_policy=member_roles("x", org.identity.account)[1].trust,
    )
    assert "only-in-dev" in role_names(org, members[0])
    for other in [org.identity.account, *members[1:]]:
        assert "only-in-dev" not in role_names(org, other)


def test_accounts_from_organizations_are_read_page_by_page(hub: AccountHub):
    calls = AwsCalls()
    hub.hub_clients.hook_every_client("before-call.organizations.ListAccounts", calls)
    listed = OrganizationsGateway(hub.hub_clients).list_accounts(page_size=1)
    assert len(listed) == 4
    assert calls.count("ListAccounts") == 4


def test_auto_falls_back_to_configured_accounts_when_organizations_refuses(
    org: Services, members: list[str]
):
    settings = org.settings.model_copy(
        update={
            "accounts": [
                ConfiguredAccount(id="111122223333", name="prod", role=None),
                ConfiguredAccount(id="444455556666", name="dev", role="OtherSpoke"),
            ]
        }
    )
    clients = fresh_clients(org)
    refuse = Refuse({})
    clients.hook_every_client("before-call.organizations.ListAccounts", refuse)
    listed = AccountHub(settings, clients, org.identity.account).accounts()
    assert listed.source == CONFIGURATION
    problem = listed.organizations_problem
    assert problem is not None and (problem.code, problem.request_id) == (
        "AccessDenied",
        "refused-1",
    )
    assert [(a.account_id, a.role_name) for a in listed.accounts[1:]] == [
        ("111122223333", "RoleDeskAccess"),
        ("444455556666", "OtherSpoke"),
    ]
    # Source `organizations` does not fall back: the error is RoleDesk's to show.
    strict = settings.model_copy(update={"accounts_source": AccountsSource.ORGANIZATIONS})
    with pytest.raises(AwsError) as raised:
        AccountHub(strict, clients, org.identity.account).accounts()
    assert raised.value.code == "AccessDenied"
    # Source `configuration` does not ask Organizations at all.
    configured = settings.model_copy(update={"accounts_source": AccountsSource.CONFIGURATION})
    before = refuse.refused
    assert len(AccountHub(configured, clients, org.identity.account).accounts().accounts) == 3
    assert refuse.refused == before


def test_an_account_whose_role_cannot_be_assumed_is_unavailable_the_others_keep_working(
    org: Services, hub: AccountHub, members: list[str]
):
    staging = account(hub, members[1])
    refuse = Refuse({"RoleArn": staging.role_arn})
    hub.hub_clients.hook_every_client("before-call.sts.AssumeRole", refuse)
    statuses = {s.account.account_id: s for s in hub.statuses(hub.accounts(), "alice")}
    assert refuse.refused == 1
    bad = statuses[members[1]]
    assert not bad.available and bad.error is not None
    assert (bad.error.code, bad.error.request_id) == ("AccessDenied", "refused-1")
    assert all(statuses[m].available for m in (members[0], members[2]))
    assert statuses[org.identity.account].available
    # The others are usable; the refused account is asked again next time (not cached).
    assert list(hub.iam(account(hub, members[0]), "alice").list_roles())
    with pytest.raises(AwsError):
        list(hub.iam(staging, "alice").list_roles())
    assert refuse.refused == 2


def test_threads_share_one_assume_role_per_account_and_call_counting_sees_members(
    hub: AccountHub, members: list[str]
):
    calls = AwsCalls()
    hub.hub_clients.hook_every_client("before-call", calls)
    accounts = [account(hub, m) for m in members]
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            list(hub.iam(accounts[i % 3], "alice").list_roles())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert calls.count("AssumeRole") == 3
    assert calls.count("ListRoles") == 12


def test_member_clients_assume_the_role_again_shortly_before_expiry(
    org: Services, members: list[str]
):
    now = [datetime.now(UTC)]
    hub = AccountHub(org.settings, fresh_clients(org), org.identity.account, clock=lambda: now[0])
    calls = AwsCalls()
    hub.hub_clients.hook_every_client("before-call", calls)
    dev = account(hub, members[0])
    clients = hub.clients(dev, "alice")
    list(hub.iam(dev, "alice").list_roles())
    first_key = clients.client("iam")._request_signer._credentials.access_key
    assert calls.count("AssumeRole") == 1
    list(hub.iam(dev, "alice").list_roles())
    assert calls.count("AssumeRole") == 1
    refresh = timedelta(seconds=org.settings.credential_refresh_seconds)
    # moto dates the credentials by its own clock, a moment after `now` was taken.
    now[0] += timedelta(seconds=org.settings.member_session_seconds + 5) - refresh
    list(hub.iam(dev, "alice").list_roles())
    assert calls.count("AssumeRole") == 2
    assert clients.client("iam")._request_signer._credentials.access_key != first_key
