"""AWS errors moto cannot produce, with botocore's Stubber on the gateway's own EC2 client:
AccessDenied on iam:PassRole, the eventual-consistency error followed by success, throttling."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from app.audit.audited import AuditContext
from app.aws.errors import AccessDenied, Throttled
from app.aws.types import InstanceProfile
from app.instances.catalog import RoleChoice
from app.instances.explain import explain
from app.instances.operations import load_status, operation_entries, record_start, run_operation
from app.instances.service import ASSOCIATE, ATTACH, InstancePlan, Plan, RetryPolicy
from tests.conftest import FakeTime

REGION = "us-east-1"
INSTANCE = "i-0abc1234def567890"
PROFILE = InstanceProfile(
    name="app-server",
    arn="arn:aws:iam::123456789012:instance-profile/app-server",
    profile_id="AIPAEXAMPLE",
    path="/",
    role_names=("app-server",),
)
ASSOCIATE_PARAMS = {"InstanceId": INSTANCE, "IamInstanceProfile": {"Arn": PROFILE.arn}}
ASSOCIATED = {
    "IamInstanceProfileAssociation": {
        "AssociationId": "iip-assoc-0123456789abcdef0",
        "InstanceId": INSTANCE,
        "IamInstanceProfile": {"Arn": PROFILE.arn, "Id": "AIPAEXAMPLE"},
        "State": "associating",
    }
}


@pytest.fixture
def stubbed(services):
    client = services.clients.client("ec2", REGION)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def attach_plan():
    return Plan(
        ATTACH,
        REGION,
        (InstancePlan(INSTANCE, "app-1", "running", ASSOCIATE),),
        RoleChoice("app-server", PROFILE),
    )


def status_of(services, stubbed, ctx):
    """The status page's data; its live association lookup is answered by the stub too."""
    stubbed.add_response(
        "describe_iam_instance_profile_associations", {"IamInstanceProfileAssociations": []}
    )
    return load_status(services, ctx.operation_id, running=False)


def run(services, fake_time=None):
    fake_time = fake_time or FakeTime()
    ctx = AuditContext(actor="tester")
    plan = attach_plan()
    record_start(services, ctx, plan)
    retry = RetryPolicy(sleep=fake_time.sleep, clock=fake_time.clock)
    return ctx, run_operation(services, ctx, plan, retry)


def test_missing_pass_role_is_explained_naming_the_permission_and_the_role(services, stubbed):
    message = (
        "You are not authorized to perform this operation. User: arn:aws:iam::123456789012:"
        "user/roledesk is not authorized to perform: iam:PassRole on resource: "
        "arn:aws:iam::123456789012:role/app-server"
    )
    stubbed.add_client_error(
        "associate_iam_instance_profile",
        service_error_code="UnauthorizedOperation",
        service_message=message,
        http_status_code=403,
        expected_params=ASSOCIATE_PARAMS,
    )
    ctx, result = run(services)
    assert result.changed == []
    assert isinstance(result.outcomes[0].error, AccessDenied)
    status = status_of(services, stubbed, ctx)
    detail = status.instances[0].detail
    assert "iam:PassRole" in detail and "role app-server" in detail
    assert status.instances[0].result == "unchanged"
    outcome = [e for e in operation_entries(services, ctx.operation_id) if e.kind == "outcome"]
    assert [(e.outcome, e.error_code) for e in outcome] == [("failed", "UnauthorizedOperation")]


def test_invalid_profile_is_retried_with_backoff_until_ec2_accepts_it(services, stubbed):
    propagation = (
        "Value (arn:aws:iam::123456789012:instance-profile/app-server) for parameter "
        "iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN"
    )
    for _ in range(2):
        stubbed.add_client_error(
            "associate_iam_instance_profile",
            service_error_code="InvalidParameterValue",
            service_message=propagation,
            http_status_code=400,
            expected_params=ASSOCIATE_PARAMS,
        )
    stubbed.add_response("associate_iam_instance_profile", ASSOCIATED, ASSOCIATE_PARAMS)
    fake_time = FakeTime()
    ctx, result = run(services, fake_time)
    assert result.changed == [INSTANCE]
    assert fake_time.sleeps == [2.0, 4.0]
    outcomes = [
        e.outcome for e in operation_entries(services, ctx.operation_id) if e.kind == "outcome"
    ]
    assert outcomes == ["failed", "failed", "succeeded"]  # every attempt is in the audit log


def test_retry_gives_up_after_about_two_minutes(services, stubbed):
    # backoff 2, 4, 8, then 15 s steps: 11 attempts fit in the 120 s budget
    for _ in range(11):
        stubbed.add_client_error(
            "associate_iam_instance_profile",
            service_error_code="InvalidParameterValue",
            service_message="Invalid IAM Instance Profile name",
            http_status_code=400,
        )
    fake_time = FakeTime()
    ctx, result = run(services, fake_time)
    assert result.changed == []
    assert fake_time.sleeps == [2.0, 4.0, 8.0] + [15.0] * 7
    assert sum(fake_time.sleeps) <= 120
    status = status_of(services, stubbed, ctx)
    assert "two minutes" in status.instances[0].detail
    assert status.instances[0].result == "unchanged"


def throttle(stubbed, code="RequestLimitExceeded"):
    """What RoleDesk sees once botocore's own retries (standard mode) gave up."""
    stubbed.add_client_error(
        "associate_iam_instance_profile",
        service_error_code=code,
        service_message="Request limit exceeded.",
        http_status_code=503,
        expected_params=ASSOCIATE_PARAMS,
    )


@pytest.mark.parametrize("code", ["RequestLimitExceeded", "Throttling"])
def test_throttling_is_retried_with_backoff(services, stubbed, code):
    throttle(stubbed, code)
    throttle(stubbed, code)
    stubbed.add_response("associate_iam_instance_profile", ASSOCIATED, ASSOCIATE_PARAMS)
    fake_time = FakeTime()
    ctx, result = run(services, fake_time)
    assert result.changed == [INSTANCE]
    assert fake_time.sleeps == [2.0, 4.0]  # backing off, not hammering
    outcomes = [
        (e.outcome, e.error_code)
        for e in operation_entries(services, ctx.operation_id)
        if e.kind == "outcome"
    ]
    assert outcomes == [("failed", code), ("failed", code), ("succeeded", None)]


def test_throttling_that_does_not_stop_is_said_plainly(services, stubbed):
    for _ in range(11):  # the whole two-minute budget: 2, 4, 8, then 15 s steps
        throttle(stubbed)
    fake_time = FakeTime()
    ctx, result = run(services, fake_time)
    assert isinstance(result.outcomes[0].error, Throttled)
    assert sum(fake_time.sleeps) <= 120
    status = status_of(services, stubbed, ctx)
    assert "throttling" in status.instances[0].detail


def test_aws_clients_use_botocores_standard_retry_mode(services):
    """Throttling is first retried by botocore itself (standard mode: Throttling and
    RequestLimitExceeded with exponential backoff and jitter), before RoleDesk sees it."""
    retries = services.clients.client("ec2", REGION).meta.config.retries
    # Config(retries={"max_attempts": 5}) counts retries: 6 attempts in all.
    assert retries["mode"] == "standard" and retries["total_max_attempts"] == 6


def test_explain_covers_wrong_state_and_profile_without_role():
    wrong_state = explain(
        "IncorrectInstanceState",
        "The instance 'i-1' is not in the 'running' state.",
        action="ec2:ReplaceIamInstanceProfileAssociation",
    )
    assert "wrong state" in wrong_state and "running" in wrong_state
    no_role = explain(
        "InvalidParameterValue",
        "Instance profile arn:... has no associated IAM Roles",
        action="ec2:AssociateIamInstanceProfile",
    )
    assert "holds no role" in no_role


def test_pass_role_missing_when_preparing_a_new_profile_changes_no_instance(services):
    from app.instances.service import ASSOCIATE as STEP

    plan = Plan(
        ATTACH,
        REGION,
        (InstancePlan(INSTANCE, "app-1", "running", STEP),),
        RoleChoice("app-server", None),  # no profile yet: RoleDesk creates one first
    )
    iam = services.clients.client("iam")
    ctx = AuditContext(actor="tester")
    record_start(services, ctx, plan)
    with Stubber(iam) as iam_stub, Stubber(services.clients.client("ec2", REGION)) as ec2_stub:
        iam_stub.add_response(
            "create_instance_profile",
            {
                "InstanceProfile": {
                    "InstanceProfileName": "app-server",
                    "InstanceProfileId": "AIPAEXAMPLE1234567",
                    "Arn": PROFILE.arn,
                    "Path": "/",
                    "Roles": [],
                    "CreateDate": "2026-11-28T00:00:00Z",
                }
            },
            {"InstanceProfileName": "app-server", "Path": "/"},
        )
        iam_stub.add_client_error(
            "add_role_to_instance_profile",
            service_error_code="AccessDenied",
            service_message="User: arn:aws:iam::123456789012:user/roledesk is not authorized to "
            "perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/app-server",
            http_status_code=403,
        )
        result = run_operation(services, ctx, plan, RetryPolicy(sleep=FakeTime().sleep))
        status = status_of(services, ec2_stub, ctx)
        iam_stub.assert_no_pending_responses()
    assert result.changed == [] and isinstance(result.profile_error, AccessDenied)
    assert "iam:PassRole" in status.profile_problem and "app-server" in status.profile_problem
    assert [i.result for i in status.instances] == ["unchanged"]
    actions = [
        e.action for e in operation_entries(services, ctx.operation_id) if e.kind == "intent"
    ]
    assert actions == ["iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile"]


def test_stopped_instance_waits_for_the_old_association_to_go(services, stubbed):
    """After DisassociateIamInstanceProfile, AWS may still hold the old association for a
    moment; the Associate that follows is retried instead of leaving the instance bare."""
    from app.instances.service import REASSOCIATE

    old = "iip-assoc-0000000000000000a"
    before = {"association_id": old, "profile_arn": "arn:old", "profile_name": "old", "role": "old"}
    plan = Plan(
        ATTACH,
        REGION,
        (InstancePlan(INSTANCE, "app-1", "stopped", REASSOCIATE, before=before),),
        RoleChoice("app-server", PROFILE),
    )
    gone = dict(ASSOCIATED["IamInstanceProfileAssociation"], AssociationId=old)
    stubbed.add_response(
        "disassociate_iam_instance_profile",
        {"IamInstanceProfileAssociation": {**gone, "State": "disassociating"}},
        {"AssociationId": old},
    )
    stubbed.add_client_error(
        "associate_iam_instance_profile",
        service_error_code="IncorrectState",
        service_message=f"There is an existing association for instance {INSTANCE}",
        http_status_code=400,
    )
    stubbed.add_response("associate_iam_instance_profile", ASSOCIATED, ASSOCIATE_PARAMS)
    fake_time = FakeTime()
    ctx = AuditContext(actor="tester")
    record_start(services, ctx, plan)
    result = run_operation(
        services, ctx, plan, RetryPolicy(sleep=fake_time.sleep, clock=fake_time.clock)
    )
    assert result.changed == [INSTANCE] and fake_time.sleeps == [2.0]
    intents = [e for e in operation_entries(services, ctx.operation_id) if e.kind == "intent"]
    assert [e.action for e in intents] == [
        "ec2:DisassociateIamInstanceProfile",
        "ec2:AssociateIamInstanceProfile",
        "ec2:AssociateIamInstanceProfile",
    ]
    assert intents[0].before == before


def reassociate_plan():
    from app.instances.service import REASSOCIATE

    before = {
        "association_id": "iip-assoc-0000000000000000a",
        "profile_arn": "arn:aws:iam::123456789012:instance-profile/old-profile",
        "profile_name": "old-profile",
        "role": "old-role",
    }
    return Plan(
        ATTACH,
        REGION,
        (InstancePlan(INSTANCE, "app-1", "stopped", REASSOCIATE, before=before),),
        RoleChoice("app-server", PROFILE),
    )


def detach_then_refuse_pass_role(stubbed, before):
    detached = dict(
        ASSOCIATED["IamInstanceProfileAssociation"],
        AssociationId=before["association_id"],
        State="disassociating",
    )
    stubbed.add_response(
        "disassociate_iam_instance_profile", {"IamInstanceProfileAssociation": detached}
    )
    stubbed.add_client_error(
        "associate_iam_instance_profile",
        service_error_code="UnauthorizedOperation",
        service_message="not authorized to perform: iam:PassRole on resource: "
        "arn:aws:iam::123456789012:role/app-server",
        http_status_code=403,
        expected_params=ASSOCIATE_PARAMS,
    )


@pytest.mark.parametrize("restore_works", [True, False], ids=["restored", "left-bare"])
def test_failed_attach_on_a_stopped_instance_puts_the_old_role_back(
    services, stubbed, restore_works
):
    plan = reassociate_plan()
    before = plan.instances[0].before
    detach_then_refuse_pass_role(stubbed, before)
    old_params = {"InstanceId": INSTANCE, "IamInstanceProfile": {"Arn": before["profile_arn"]}}
    if restore_works:
        stubbed.add_response("associate_iam_instance_profile", ASSOCIATED, old_params)
    else:
        stubbed.add_client_error(
            "associate_iam_instance_profile",
            service_error_code="UnauthorizedOperation",
            service_message="not authorized to perform: iam:PassRole on old-role",
            http_status_code=403,
            expected_params=old_params,
        )
    ctx = AuditContext(actor="tester")
    record_start(services, ctx, plan)
    result = run_operation(services, ctx, plan, RetryPolicy(sleep=FakeTime().sleep))
    assert result.changed == []
    status = status_of(services, stubbed, ctx).instances[0]
    assert status.last_error.params["profile_arn"] == PROFILE.arn  # the new role's failure
    assert "iam:PassRole" in status.detail and "role app-server" in status.detail
    if restore_works:
        assert result.unchanged == [INSTANCE]
        assert status.result == "unchanged"
        assert "previous role (old-role) was attached again" in status.detail
    else:
        assert result.partly == [INSTANCE]
        assert status.result == "partly"
