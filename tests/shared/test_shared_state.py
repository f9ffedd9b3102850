"""The shared state (app.shared.state) between processes: each "process" here is its own
database engine and SharedState on one real database (SQLite file or PostgreSQL), over the
real moto server, driven from real threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest

from app import migrate
from app.audit.audited import AuditContext, Change
from app.db import Database
from app.roles.inventory import RoleInventory
from app.services import Services
from app.shared.state import SharedState
from tests.security.aws_calls import AwsCalls

TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'  # noqa: E501


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    migrate.upgrade(url)
    return url


class Process:
    """What one RoleDesk process holds: its engine, its view of the shared state and its
    roles list (on the test's moto server)."""

    def __init__(self, url: str, services: Services, ttl: float = 900) -> None:
        self.db = Database(url)
        self.shared = SharedState(self.db)
        self.roles = RoleInventory(services.iam, ttl_seconds=ttl, shared=self.shared)


@pytest.fixture
def processes(shared_url: str, services: Services) -> Iterator[list[Process]]:
    made = [Process(shared_url, services) for _ in range(4)]
    yield made
    for process in made:
        process.db.dispose()


@pytest.fixture
def calls(services: Services) -> AwsCalls:
    counted = AwsCalls()
    services.clients.hook_every_client("before-call", counted)
    return counted


def iam_outside(services: Services):  # type: ignore[no-untyped-def]
    """A plain IAM client: changes made outside RoleDesk."""
    return boto3.client(
        "iam",
        endpoint_url=services.sandbox_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def arn(name: str) -> str:
    return f"arn:aws:iam::123456789012:role/{name}"


def through_roledesk(services: Services, process: Process, method: str, **kwargs: object) -> None:
    """A change made by `process` through the audited path (which calls its `on_change`)."""
    services.audited.listeners.append(process.roles.on_change)
    try:
        name = str(kwargs["name"])
        services.audited.call(
            AuditContext(), Change(arn(name)), getattr(services.iam, method), **kwargs
        )
        # The change is done when its run ends: the operations engine waits for the roles
        # list's re-read (stored, with its notice) before it ends a run, as this does.
        process.roles.settle()
    finally:
        services.audited.listeners.remove(process.roles.on_change)


def test_a_change_through_one_process_is_shown_by_the_others_at_once(processes, services):
    a, b, *_ = processes
    assert a.roles.find("Made-Here") is None and b.roles.find("Made-Here") is None
    through_roledesk(services, a, "create_role", name="Made-Here", trust_policy=TRUST)
    found = b.roles.find("made-here")
    assert found is not None and found.name == "Made-Here"

    through_roledesk(services, a, "delete_role", name="Made-Here")
    assert b.roles.find("Made-Here") is None


def test_refresh_on_one_process_refreshes_all_reading_aws_once(processes, services, calls):
    a, b, c, _ = processes
    for process in (a, b, c):
        process.roles.page()
    assert calls.count("ListRoles") == 1  # b and c took a's stored list
    iam_outside(services).create_role(RoleName="Made-Outside", AssumeRolePolicyDocument=TRUST)
    assert b.roles.find("Made-Outside") is None  # not refreshed yet: the held copy
    a.roles.refresh()
    assert calls.count("ListRoles") == 2
    for process in (a, b, c):
        found = process.roles.find("made-outside")
        assert found is not None and found.name == "Made-Outside"
    assert calls.count("ListRoles") == 2


def test_a_new_process_starts_from_the_stored_list(processes, shared_url, services, calls):
    processes[0].roles.page()
    assert calls.count("ListRoles") == 1
    late = Process(shared_url, services)
    try:
        assert late.roles.page().total == processes[0].roles.page().total
        assert calls.count("ListRoles") == 1
    finally:
        late.db.dispose()


def test_an_expired_list_is_read_once_by_four_processes_at_the_same_time(
    shared_url, services, calls
):
    outside = iam_outside(services)
    for n in range(30):
        outside.create_role(RoleName=f"bulk-{n}", AssumeRolePolicyDocument=TRUST)
    made = [Process(shared_url, services) for _ in range(4)]
    try:
        start = threading.Barrier(4)

        def first_page(process: Process) -> int:
            start.wait()
            return process.roles.page().total

        with ThreadPoolExecutor(4) as pool:
            totals = list(pool.map(first_page, made))
        assert totals == [totals[0]] * 4 and totals[0] >= 30
        assert calls.count("ListRoles") == 1
    finally:
        for process in made:
            process.db.dispose()


def test_one_refresher_at_a_time(processes):
    inside: list[int] = []
    overlaps: list[int] = []
    start = threading.Barrier(4)

    def refresh(process: Process) -> None:
        start.wait()
        for _ in range(3):
            with process.shared.refresh_lock("roles", "k"):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(len(inside))
                time.sleep(0.01)
                inside.pop()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(refresh, processes))
    assert overlaps == []


def test_a_full_read_keeps_changes_made_while_it_ran(processes):
    a, b, *_ = processes
    since = a.shared.last_change_id()
    read = {"x": '"old x"', "y": '"old y"'}
    b.shared.put_item("test", "", "x", '"new x"')  # changed during a's read
    b.shared.put_item("test", "", "z", '"new z"')
    a.shared.replace_items("test", "", read, datetime.now(UTC), since)
    stored = b.shared.load("test", "")
    assert stored is not None
    assert stored.items == {"x": '"new x"', "y": '"old y"', "z": '"new z"'}


def test_notices_arrive_in_order_from_concurrent_writers(processes):
    """Many writers at once: every other process sees every notice (none skipped by a
    later id committing first)."""
    seen: list[str | None] = []
    reader = processes[3].shared
    reader.subscribe("test", lambda _key, item: seen.append(item))

    def write(index: int) -> None:
        process = processes[index % 3]
        for n in range(10):
            process.shared.put_item("test", "", f"{index}-{n}", "1")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(write, range(6)))
    reader.catch_up()
    assert sorted(i for i in seen if i is not None) == sorted(
        f"{i}-{n}" for i in range(6) for n in range(10)
    )


def test_postgresql_notice_is_applied_without_a_request(postgres_url, services):
    migrate.upgrade(postgres_url)
    a, b = Process(postgres_url, services), Process(postgres_url, services)
    try:
        a.roles.page()
        b.roles.page()
        applied = threading.Event()
        b.shared.subscribe("roles", lambda _key, item: applied.set())
        through_roledesk(services, a, "create_role", name="Pushed", trust_policy=TRUST)
        assert applied.wait(10)  # the listener thread applied it; b was asked nothing
        assert b.roles._rows is not None and "pushed" in b.roles._rows
    finally:
        a.db.dispose()
        b.db.dispose()


def ec2_outside(services: Services):  # type: ignore[no-untyped-def]
    return boto3.client(
        "ec2",
        endpoint_url=services.sandbox_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_the_instances_list_is_shared_like_the_roles_list(processes, services, calls):
    """Stored (a new process starts warm), read from AWS once, changes applied from the
    stored row by every other process, "Refresh list" on one refreshes all."""
    from app.instances.inventory import InstanceInventory

    ec2, iam = ec2_outside(services), iam_outside(services)
    launched = ec2.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2)["Instances"]
    first, second = (i["InstanceId"] for i in launched)
    iam.create_role(RoleName="Shared-Ec2", AssumeRolePolicyDocument=TRUST)
    profile = iam.create_instance_profile(InstanceProfileName="Shared-Ec2")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="Shared-Ec2", RoleName="Shared-Ec2")
    a, b, c, _ = processes
    one = InstanceInventory(services.ec2, shared=a.shared)
    other = InstanceInventory(services.ec2, shared=b.shared)
    one.snapshot("us-east-1")
    assert calls.count("DescribeInstances") == 1
    other.snapshot("us-east-1")  # took the stored list
    assert calls.count("DescribeInstances") == 1

    # An attach made through the first process: it reads the instance back once and
    # stores it; the other applies the stored row without asking AWS.
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile["Arn"]}, InstanceId=first)
    reads = calls.count("DescribeIamInstanceProfileAssociations")
    one.on_change(
        "ec2:AssociateIamInstanceProfile", f"arn:aws:ec2:us-east-1:123456789012:instance/{first}"
    )
    one.settle()  # what the operations engine does before a run ends
    assert calls.count("DescribeIamInstanceProfileAssociations") == reads + 1
    for inventory in (one, other):
        held = inventory.snapshot("us-east-1").associations
        assert held[first].profile_arn == profile["Arn"] and second not in held
    assert calls.count("DescribeIamInstanceProfileAssociations") == reads + 1

    # A process started now takes the stored list, the attach included.
    late = InstanceInventory(services.ec2, shared=c.shared)
    assert late.snapshot("us-east-1").associations[first].profile_arn == profile["Arn"]
    assert calls.count("DescribeInstances") == 1

    # A change made outside RoleDesk; "Refresh list" on the first process reads AWS once and
    # every process shows it at its next view.
    ec2.associate_iam_instance_profile(
        IamInstanceProfile={"Arn": profile["Arn"]}, InstanceId=second
    )
    one.refresh("us-east-1")
    assert calls.count("DescribeInstances") == 2
    for inventory in (one, other, late):
        assert second in inventory.snapshot("us-east-1").associations
    assert calls.count("DescribeInstances") == 2


def test_a_change_is_stored_from_its_answer_without_reading_aws(processes, services, calls):
    """The audited path hands the listener what AWS answered: an attach's new association is
    stored and announced as it is (no DescribeIamInstanceProfileAssociations after a bulk
    change's last change, issue 15), and a detach stores none."""
    from app.instances.inventory import InstanceInventory

    ec2, iam = ec2_outside(services), iam_outside(services)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    iid = instance["InstanceId"]
    iam.create_role(RoleName="Answer-Ec2", AssumeRolePolicyDocument=TRUST)
    profile = iam.create_instance_profile(InstanceProfileName="Answer-Ec2")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="Answer-Ec2", RoleName="Answer-Ec2")
    a, b, *_ = processes
    one = InstanceInventory(services.ec2, shared=a.shared)
    other = InstanceInventory(services.ec2, shared=b.shared)
    one.snapshot("us-east-1")
    other.snapshot("us-east-1")
    target = f"arn:aws:ec2:us-east-1:123456789012:instance/{iid}"
    ctx = AuditContext(actor="tester")
    gateway = services.ec2()
    answer = services.audited.call(
        ctx, Change(target), gateway.associate_profile, iid, profile["Arn"]
    )
    reads = calls.count("DescribeIamInstanceProfileAssociations")
    one.on_change("ec2:AssociateIamInstanceProfile", target, answer)
    one.settle()
    for inventory in (one, other):
        held = inventory.snapshot("us-east-1").associations
        assert held[iid].association_id == answer.association_id
        assert held[iid].profile_arn == profile["Arn"]
    detached = services.audited.call(
        ctx, Change(target), gateway.disassociate_profile, answer.association_id
    )
    one.on_change("ec2:DisassociateIamInstanceProfile", target, detached)
    one.settle()
    for inventory in (one, other):
        assert iid not in inventory.snapshot("us-east-1").associations
    assert calls.count("DescribeIamInstanceProfileAssociations") == reads


def test_a_failed_read_back_makes_every_process_read_the_region_again(processes, services, calls):
    from app.instances.inventory import InstanceInventory

    ec2 = ec2_outside(services)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    a, b, *_ = processes
    failing = {"on": False}

    def ec2_for(region: str):  # type: ignore[no-untyped-def]
        gateway = services.ec2(region)
        if failing["on"]:
            raise RuntimeError("the network failed")
        return gateway

    one = InstanceInventory(ec2_for, shared=a.shared)
    other = InstanceInventory(services.ec2, shared=b.shared)
    other.snapshot("us-east-1")
    failing["on"] = True
    one.on_change(
        "ec2:AssociateIamInstanceProfile",
        f"arn:aws:ec2:us-east-1:123456789012:instance/{instance['InstanceId']}",
    )
    one.settle()
    loads = calls.count("DescribeInstances")
    other.snapshot("us-east-1")  # the stored list was marked out of date: AWS again
    assert calls.count("DescribeInstances") == loads + 1
