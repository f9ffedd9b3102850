"""The bulk EC2 role change works on instances side by side, at most
`ec2_bulk_concurrency` at a time (issue 15), on SQLite and PostgreSQL: the calls really
overlap (real threads; AWS's answer time stood in for by a sleep), never more than the
bound, each call's intent is in the ledger before its outcome, and one instance's failure
changes nothing for the others."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

from app import migrate
from app.audit.audited import AuditContext
from app.aws.clients import SANDBOX_KEYS
from app.aws.types import InstanceProfile
from app.instances.catalog import RoleChoice
from app.instances.operations import load_status, operation_entries, record_start, run_operation
from app.instances.service import ASSOCIATE, ATTACH, InstancePlan, Plan
from app.services import build_services
from app.settings import Settings
from app.wizard.trust import service_trust

REGION = "us-east-1"
BOUND = 4
INSTANCES = 10
ANSWER_TIME = 0.15
MISSING = "i-0123456789abcdef0"


@pytest.fixture(params=["sqlite", "postgresql"])
def bounded(request, sandbox):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    migrate.upgrade(url)
    built = build_services(
        Settings(database_url=url, mode="sandbox", ec2_bulk_concurrency=BOUND),
        sandbox_endpoint=sandbox.endpoint_url,
    )
    yield built
    built.db.dispose()


def aws(sandbox, service):
    return boto3.client(
        service, endpoint_url=sandbox.endpoint_url, region_name=REGION, **SANDBOX_KEYS
    )


def profile_for(sandbox, name) -> InstanceProfile:
    iam = aws(sandbox, "iam")
    iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(service_trust("ec2.amazonaws.com"))
    )
    made = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return InstanceProfile(name, made["Arn"], made["InstanceProfileId"], "/", (name,))


def test_instances_change_side_by_side_within_the_bound(bounded, sandbox):
    services = bounded
    ec2 = aws(sandbox, "ec2")
    launched = ec2.run_instances(ImageId="ami-12c6146b", MinCount=INSTANCES, MaxCount=INSTANCES)
    ids = [i["InstanceId"] for i in launched["Instances"]]
    profile = profile_for(sandbox, "bulk-side")
    # One instance AWS does not know: its call fails, the others go on.
    wanted = [*ids[:5], MISSING, *ids[5:]]
    plan = Plan(
        ATTACH,
        REGION,
        tuple(InstancePlan(i, i, "running", ASSOCIATE) for i in wanted),
        RoleChoice("bulk-side", profile),
    )
    lock, running, peak = threading.Lock(), [0], [0]

    def before(**_kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(ANSWER_TIME)

    def after(**_kwargs):
        with lock:
            running[0] -= 1

    events = services.clients.client("ec2", REGION).meta.events
    events.register("before-call.ec2.AssociateIamInstanceProfile", before)
    events.register("after-call.ec2.AssociateIamInstanceProfile", after)
    events.register("after-call-error.ec2.AssociateIamInstanceProfile", after)
    ctx = AuditContext(actor="tester")
    record_start(services, ctx, plan)
    try:
        result = run_operation(services, ctx, plan)
    finally:
        events.unregister("before-call.ec2.AssociateIamInstanceProfile", before)
        events.unregister("after-call.ec2.AssociateIamInstanceProfile", after)
        events.unregister("after-call-error.ec2.AssociateIamInstanceProfile", after)

    assert peak[0] == BOUND  # side by side, and never more than the bound
    assert result.changed == ids
    assert [o.instance_id for o in result.outcomes if o.error is not None] == [MISSING]
    found = ec2.describe_iam_instance_profile_associations(MaxResults=1000)
    assert sorted(a["InstanceId"] for a in found["IamInstanceProfileAssociations"]) == sorted(ids)

    entries = operation_entries(services, ctx.operation_id)
    intents = {e.event_id: e.seq for e in entries if e.kind == "intent"}
    outcomes = {e.event_id: (e.seq, e.outcome) for e in entries if e.kind == "outcome"}
    assert intents.keys() == outcomes.keys() and len(intents) == INSTANCES + 1
    assert all(intents[e] < outcomes[e][0] for e in intents)
    assert sorted(o for _, o in outcomes.values()) == ["failed"] + ["succeeded"] * INSTANCES
    status = load_status(services, ctx.operation_id, running=False)
    by_id = {i.instance_id: i.result for i in status.instances}
    assert by_id[MISSING] == "unchanged"
    assert {by_id[i] for i in ids} == {"changed"}
