"""IAM eventual consistency: errors moto cannot produce, with botocore's Stubber. On real AWS
the create run retries NoSuchEntity after CreateRole (and "Invalid principal") with backoff
for up to two minutes; other errors fail at once and roll back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from app.audit.audited import AuditContext
from app.wizard.create import RoleCreator
from app.wizard.steps import CreatePlan
from app.wizard.trust import service_trust
from tests.conftest import FakeTime

TRUST = service_trust("lambda.amazonaws.com")
POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def plan(**changes) -> CreatePlan:
    values = dict(
        name="eventual",
        path="/",
        description="",
        max_session_duration=3600,
        tags=(),
        trust_policy=TRUST,
        policy_arns=(POLICY,),
        boundary_arn=None,
        inline_name=None,
        inline_document=None,
        instance_profile=False,
    )
    values.update(changes)
    return CreatePlan(**values)


def role_response(account):
    return {
        "Role": {
            "RoleName": "eventual",
            "RoleId": "AROAEXAMPLE1234567890",
            "Path": "/",
            "Arn": f"arn:aws:iam::{account}:role/eventual",
            "CreateDate": datetime(2026, 11, 28, tzinfo=UTC),
            "AssumeRolePolicyDocument": json.dumps(TRUST),
        }
    }


@pytest.fixture
def stubbed(services):
    client = services.clients.client("iam")
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_no_such_entity_after_create_is_retried_then_succeeds(services, stubbed):
    account = services.identity.account
    stubbed.add_response("create_role", role_response(account))
    stubbed.add_client_error(
        "attach_role_policy", "NoSuchEntity", "Role eventual not found", http_status_code=404
    )
    stubbed.add_client_error(
        "attach_role_policy", "NoSuchEntity", "Role eventual not found", http_status_code=404
    )
    stubbed.add_response("attach_role_policy", {}, {"RoleName": "eventual", "PolicyArn": POLICY})
    fake = FakeTime()
    creator = RoleCreator(services, retry_propagation=True, sleep=fake.sleep, clock=fake.clock)
    outcome = creator.run(plan(), AuditContext(actor="t"))
    assert outcome.ok and outcome.role_arn == f"arn:aws:iam::{account}:role/eventual"
    assert fake.sleeps == [1.0, 2.0]


def test_retries_stop_after_about_two_minutes_then_roll_back(services, stubbed):
    stubbed.add_response("create_role", role_response(services.identity.account))
    for _ in range(12):
        stubbed.add_client_error(
            "attach_role_policy", "NoSuchEntity", "not yet", http_status_code=404
        )
    stubbed.add_response("delete_role", {}, {"RoleName": "eventual"})
    fake = FakeTime()
    creator = RoleCreator(services, retry_propagation=True, sleep=fake.sleep, clock=fake.clock)
    outcome = creator.run(plan(), AuditContext(actor="t"))
    assert not outcome.ok and outcome.error.code == "NoSuchEntity"
    assert sum(fake.sleeps) == 120 and fake.sleeps == [1, 2, 4, 8] + [15] * 7
    assert outcome.rolled_back == ["Delete the role"]


def test_limit_exceeded_is_never_retried(services, stubbed):
    stubbed.add_response("create_role", role_response(services.identity.account))
    stubbed.add_client_error(
        "attach_role_policy",
        "LimitExceeded",
        "Cannot exceed quota for PoliciesPerRole: 10",
        http_status_code=409,
    )
    stubbed.add_response("delete_role", {}, {"RoleName": "eventual"})
    fake = FakeTime()
    creator = RoleCreator(services, retry_propagation=True, sleep=fake.sleep, clock=fake.clock)
    outcome = creator.run(plan(), AuditContext(actor="t"))
    assert outcome.error.code == "LimitExceeded" and fake.sleeps == []


def test_invalid_principal_on_create_role_is_retried(services, stubbed):
    stubbed.add_client_error(
        "create_role",
        "MalformedPolicyDocument",
        'Invalid principal in policy: "AWS":"arn:aws:iam::1:role/new"',
        http_status_code=400,
    )
    stubbed.add_response("create_role", role_response(services.identity.account))
    stubbed.add_response("attach_role_policy", {})
    fake = FakeTime()
    creator = RoleCreator(services, retry_propagation=True, sleep=fake.sleep, clock=fake.clock)
    assert creator.run(plan(), AuditContext(actor="t")).ok and fake.sleeps == [1.0]


def test_sandbox_mode_does_not_retry(services, stubbed):
    stubbed.add_response("create_role", role_response(services.identity.account))
    stubbed.add_client_error("attach_role_policy", "NoSuchEntity", "no", http_status_code=404)
    stubbed.add_response("delete_role", {})
    fake = FakeTime()
    creator = RoleCreator(services, sleep=fake.sleep, clock=fake.clock)  # sandbox settings
    outcome = creator.run(plan(), AuditContext(actor="t"))
    assert outcome.error.code == "NoSuchEntity" and fake.sleeps == []
