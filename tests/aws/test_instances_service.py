"""Attach, replace and detach against moto's server; every assertion reads AWS back."""

from __future__ import annotations

import boto3
import pytest

from app.audit.audited import AuditContext
from app.instances.catalog import ProfileCatalog, find_choice, role_choices
from app.instances.listing import fetch_rows, instance_arn
from app.instances.operations import load_status, operation_entries, record_start, run_operation
from app.instances.service import (
    ASSOCIATE,
    ATTACH,
    DETACH,
    REASSOCIATE,
    REPLACE,
    plan_change,
)
from tests.aws.test_lost_answers import hooked, lose_answer

REGION = "us-east-1"


def profile_on(ec2_client, instance_id):
    """The instance's live association's profile name, as AWS reports it (None: no role)."""
    found = ec2_client.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    live = [a for a in found if a["State"] in ("associating", "associated")]
    assert len(live) <= 1
    return live[0]["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] if live else None


def make_plan(services, action, instance_ids, choice_value=None):
    catalog = ProfileCatalog(services.iam)
    roles = [r.role for r in services.inventory.page(per_page=1_000_000).rows]
    choice = None
    if choice_value:
        choice = find_choice(role_choices(catalog.profiles(), roles), choice_value)
        assert choice is not None, choice_value
    rows = fetch_rows(services.ec2(REGION), catalog.by_arn, instance_ids)
    return plan_change(REGION, action, instance_ids, rows, choice)


def execute(services, plan, retry=None):
    ctx = AuditContext(actor="tester")
    record_start(services, ctx, plan)
    return ctx, run_operation(services, ctx, plan, retry)


def test_attach_to_an_instance_without_a_role(seeded, ids, ec2_client):
    plan = make_plan(seeded, ATTACH, [ids["bastion"]], "profile:web-app-ec2")
    assert [i.step for i in plan.instances] == [ASSOCIATE]
    _, result = execute(seeded, plan)
    assert result.changed == [ids["bastion"]]
    assert profile_on(ec2_client, ids["bastion"]) == "web-app-ec2"


def test_replace_on_a_running_instance_records_the_replaced_profile(seeded, ids, ec2_client):
    web1 = ids["web-1"]
    plan = make_plan(seeded, ATTACH, [web1], "profile:batch-worker-ec2")
    assert [i.step for i in plan.instances] == [REPLACE]
    assert plan.instances[0].before["role"] == "web-app-ec2"
    ctx, result = execute(seeded, plan)
    assert result.changed == [web1]
    assert profile_on(ec2_client, web1) == "batch-worker-ec2"
    intents = [e for e in operation_entries(seeded, ctx.operation_id) if e.kind == "intent"]
    assert [e.action for e in intents] == ["ec2:ReplaceIamInstanceProfileAssociation"]
    assert intents[0].target == instance_arn(REGION, seeded.identity.account, web1)
    assert intents[0].before["profile_name"] == "web-app-ec2"
    assert intents[0].region == REGION


def test_replace_is_decided_from_associations_even_after_an_earlier_replace(
    seeded, ids, ec2_client
):
    """moto leaves DescribeInstances' profile stale after Replace; a second change must still
    replace the live association (not try to associate a second one)."""
    web2 = ids["web-2"]
    execute(seeded, make_plan(seeded, ATTACH, [web2], "profile:batch-worker-ec2"))
    plan = make_plan(seeded, ATTACH, [web2], "profile:reporting-ec2")
    assert plan.instances[0].step == REPLACE
    assert plan.instances[0].before["role"] == "batch-worker-ec2"
    _, result = execute(seeded, plan)
    assert result.changed == [web2]
    assert profile_on(ec2_client, web2) == "reporting-ec2"


def test_stopped_instance_with_a_role_is_detached_then_attached(seeded, ids, ec2_client):
    reporting = ids["reporting"]
    plan = make_plan(seeded, ATTACH, [reporting], "profile:web-app-ec2")
    assert [i.step for i in plan.instances] == [REASSOCIATE]
    ctx, result = execute(seeded, plan)
    assert result.changed == [reporting]
    assert profile_on(ec2_client, reporting) == "web-app-ec2"
    actions = [e.action for e in operation_entries(seeded, ctx.operation_id) if e.kind == "intent"]
    assert actions == ["ec2:DisassociateIamInstanceProfile", "ec2:AssociateIamInstanceProfile"]


def test_detach(seeded, ids, ec2_client):
    plan = make_plan(seeded, DETACH, [ids["web-1"], ids["bastion"]])
    assert [i.will_change for i in plan.instances] == [True, False]
    assert plan.instances[1].reason == "The instance has no role to detach."
    ctx, result = execute(seeded, plan)
    assert result.changed == [ids["web-1"]]
    assert profile_on(ec2_client, ids["web-1"]) is None
    status = load_status(seeded, ctx.operation_id, running=False)
    assert [i.result for i in status.instances] == ["changed", "skipped"]
    assert status.done and not status.crashed


def test_role_without_profile_gets_a_same_named_profile_first(seeded, ids, ec2_client, sandbox):
    plan = make_plan(seeded, ATTACH, [ids["bastion"]], "role:legacy-build-server")
    assert plan.choice.needs_profile and plan.profile_name == "legacy-build-server"
    ctx, result = execute(seeded, plan)
    assert result.changed == [ids["bastion"]]
    assert profile_on(ec2_client, ids["bastion"]) == "legacy-build-server"
    iam = boto3.client(
        "iam",
        endpoint_url=sandbox.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    profile = iam.get_instance_profile(InstanceProfileName="legacy-build-server")
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == ["legacy-build-server"]
    status = load_status(seeded, ctx.operation_id, running=False)
    assert [c.action for c in status.profile_calls] == [
        "iam:CreateInstanceProfile",
        "iam:AddRoleToInstanceProfile",
    ]


def test_bulk_with_failing_instances_says_exactly_what_changed(seeded, ids, ec2_client):
    ec2_client.terminate_instances(InstanceIds=[ids["build-agent-old"]])
    missing = "i-0123456789abcdef0"
    wanted = [ids["bastion"], ids["web-1"], ids["build-agent-old"], missing, ids["web-2"]]
    plan = make_plan(seeded, ATTACH, wanted, "profile:batch-worker-ec2")
    steps = {i.instance_id: i.step for i in plan.instances}
    assert steps[ids["build-agent-old"]] is None and steps[missing] is None
    # web-1's association disappears between the review and the run (changed outside
    # RoleDesk), so AWS refuses the Replace: a real failure in the middle of the bulk action.
    web1_association = plan.instances[1].before["association_id"]
    ec2_client.disassociate_iam_instance_profile(AssociationId=web1_association)

    ctx, result = execute(seeded, plan)

    assert result.changed == [ids["bastion"], ids["web-2"]]
    assert result.unchanged == [ids["web-1"], ids["build-agent-old"], missing]
    assert profile_on(ec2_client, ids["bastion"]) == "batch-worker-ec2"
    assert profile_on(ec2_client, ids["web-2"]) == "batch-worker-ec2"
    assert profile_on(ec2_client, ids["web-1"]) is None
    entries = operation_entries(seeded, ctx.operation_id)
    assert {e.operation_id for e in entries} == {ctx.operation_id}
    status = load_status(seeded, ctx.operation_id, running=False)
    by_id = {i.instance_id: i for i in status.instances}
    assert by_id[ids["web-1"]].result == "unchanged"
    assert by_id[ids["web-1"]].last_error.error_code == "InvalidAssociationID.NotFound"
    assert "changed outside RoleDesk" in by_id[ids["web-1"]].detail
    assert by_id[ids["build-agent-old"]].result == "skipped"
    assert "terminated" in by_id[ids["build-agent-old"]].detail
    assert by_id[missing].detail == "No such instance in this region."
    assert [by_id[i].result for i in (ids["bastion"], ids["web-2"])] == ["changed", "changed"]


def test_attaching_the_profile_an_instance_already_has_does_nothing(seeded, ids):
    plan = make_plan(seeded, ATTACH, [ids["web-1"]], "profile:web-app-ec2")
    assert not plan.changing
    assert plan.instances[0].reason == "The instance already carries web-app-ec2."


@pytest.fixture
def pg_services(postgres_url, sandbox):
    from app import migrate
    from app.sandbox_seed import seed
    from app.services import build_services
    from app.settings import Settings

    migrate.upgrade(postgres_url)
    built = build_services(
        Settings(database_url=postgres_url, mode="sandbox"), sandbox_endpoint=sandbox.endpoint_url
    )
    seed(built)
    yield built
    built.db.dispose()


def test_status_is_rebuilt_from_the_ledger_on_postgresql(pg_services, ec2_client):
    ids = {i.name: i.instance_id for i in pg_services.ec2().list_instances()}
    plan = make_plan(pg_services, ATTACH, [ids["bastion"], ids["web-1"]], "profile:reporting-ec2")
    ctx, result = execute(pg_services, plan)
    assert result.changed == [ids["bastion"], ids["web-1"]]
    status = load_status(pg_services, ctx.operation_id, running=False)
    assert [i.result for i in status.instances] == ["changed", "changed"]
    assert [i.association_state for i in status.instances] == ["associated", "associated"]
    assert status.instances[1].before["role"] == "web-app-ec2"
    assert profile_on(ec2_client, ids["web-1"]) == "reporting-ec2"


def test_a_stopped_instance_whose_attach_answer_was_lost_but_made_keeps_its_new_role(
    seeded, ids, ec2_client
):
    """Detach, then an attach whose answer was lost and which the reconciler finds made: the
    instance has the role asked for, and no undo can take that attach back, so the detach is
    not undone either (attaching the old role again would fail: the instance has one) and the
    instance counts as changed."""
    reporting = ids["reporting"]
    plan = make_plan(seeded, ATTACH, [reporting], "profile:web-app-ec2")
    assert [i.step for i in plan.instances] == [REASSOCIATE]
    assert seeded.settings.aws_region == REGION  # the client `hooked` hooks
    with hooked(seeded, "after-call.ec2.AssociateIamInstanceProfile", lose_answer()):
        ctx, result = execute(seeded, plan)
    assert result.changed == [reporting]
    assert profile_on(ec2_client, reporting) == "web-app-ec2"
    entries = operation_entries(seeded, ctx.operation_id)
    assert [(e.action, e.outcome) for e in entries if e.kind != "record"] == [
        ("ec2:DisassociateIamInstanceProfile", "pending"),
        ("ec2:DisassociateIamInstanceProfile", "succeeded"),
        ("ec2:AssociateIamInstanceProfile", "pending"),
        ("ec2:AssociateIamInstanceProfile", "unknown"),
        ("ec2:AssociateIamInstanceProfile", "succeeded"),  # the reconciler's verdict
    ]
    status = load_status(seeded, ctx.operation_id, running=False)
    assert status is not None
    assert [(i.result, i.detail) for i in status.instances] == [("changed", "")]
