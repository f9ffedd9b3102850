"""The benchmarks' latency model (bench/latency.py) on the real sandbox: it delays RoleDesk's
AWS calls, records them, and computes the critical path from pages and declared dependencies.
Delays are checked as lower bounds only (tests are not timers)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.latency import Call, LatencyModel, Recording, longest_chain


def test_delay_is_added_to_each_call_and_calls_are_recorded(services):
    model = LatencyModel(delay_ms=40, jitter_ms=0)
    model.attach(services.clients)
    ec2 = services.ec2()
    with model.switched(False):
        baseline = model.run(lambda: (ec2.list_regions(), None)[1], modelled=False, after=None)
    run = model.run(
        lambda: (ec2.list_regions(), ec2.list_instances(), None)[2], modelled=True, after=None
    )
    assert run.calls == 2 and baseline.calls == 1
    assert all(c.seconds >= 0.040 for c in run.observed.calls)
    assert run.seconds >= 0.080  # two calls, one after the other
    assert len(run.observed) == 2 and len(run.critical) == 1  # independent: could overlap


def test_calls_side_by_side_are_one_call_time_on_the_path(services):
    model = LatencyModel(delay_ms=60, jitter_ms=0)
    model.attach(services.clients)
    ec2 = services.ec2()

    def both() -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda f: f(), [ec2.list_instances, ec2.list_associations]))

    run = model.run(both, modelled=True, after=None)
    assert run.calls == 2 and len(run.observed) == 1 and len(run.critical) == 1
    # Declared: associations must wait for instances. They overlapped, so no chain of two.
    ordered = model.run(
        lambda: (ec2.list_instances(), ec2.list_associations(), None)[2],
        modelled=True,
        after={"DescribeIamInstanceProfileAssociations": {"DescribeInstances"}},
    )
    assert ordered.critical.describe() == (
        "DescribeInstances -> DescribeIamInstanceProfileAssociations"
    )


def test_pages_of_a_listing_must_follow_each_other(services):
    client = services.clients.client("iam")
    for i in range(3):
        client.create_role(RoleName=f"paged-{i}", AssumeRolePolicyDocument="{}")
    model = LatencyModel(delay_ms=1, jitter_ms=0)
    model.attach(services.clients)

    def listing() -> None:
        for _ in client.get_paginator("list_roles").paginate(PaginationConfig={"PageSize": 1}):
            pass

    run = model.run(listing, modelled=True, after=None)
    assert run.calls >= 3 and len(run.critical) == run.calls
    assert sum(c.continuation for c in run.critical.calls) == run.calls - 1


def test_longest_chain_follows_declared_dependencies():
    def call(name: str, start: float, end: float, thread: int = 1) -> Call:
        return Call(name, start, end, thread)

    # The wizard's shape: checks side by side, CreateRole, then attaches and the profile pair.
    calls = [
        call("GetRole", 0, 1, 1),
        call("GetInstanceProfile", 0, 1, 2),
        call("CreateRole", 1, 2),
        *(call("AttachRolePolicy", 2, 3, t) for t in (1, 2, 3)),
        call("CreateInstanceProfile", 2, 3, 4),
        call("AddRoleToInstanceProfile", 3, 4, 4),
    ]
    after = {
        "CreateRole": {"GetRole", "GetInstanceProfile"},
        "AttachRolePolicy": {"CreateRole"},
        "CreateInstanceProfile": {"CreateRole"},
        "AddRoleToInstanceProfile": {"CreateInstanceProfile"},
    }
    path = Recording(calls).critical_path(after)
    assert len(path) == 4 and path.seconds == 4
    assert path.describe().endswith(
        "CreateRole -> CreateInstanceProfile -> AddRoleToInstanceProfile"
    )
    assert len(longest_chain(calls, lambda later, earlier: False)) == 1


def test_jitter_cannot_exceed_the_delay():
    with pytest.raises(ValueError):
        LatencyModel(delay_ms=10, jitter_ms=20)
    model = LatencyModel(delay_ms=50, jitter_ms=5)
    assert all(0.045 <= model.delay() <= 0.055 for _ in range(200))


def test_calls_sharing_bounded_workers_are_a_chain_of_rounds():
    """20 changes sent 8 at a time after one read: the path at that concurrency is the read
    and 3 rounds (20 / 8, rounded up), however the calls happened to overlap."""
    read = Call("DescribeInstances", 0, 1, 0)
    changes = [
        Call("AssociateIamInstanceProfile", 1 + k // 8, 2 + k // 8, k % 8) for k in range(20)
    ]
    after = {"AssociateIamInstanceProfile": {"DescribeInstances"}}
    recording = Recording([read, *changes])
    assert len(recording.critical_path(after)) == 2  # unbounded: all changes at once
    bounded = recording.critical_path(after, bound=({"AssociateIamInstanceProfile"}, 8))
    assert len(bounded) == 4 and bounded.seconds == 4


def test_bounded_path_is_the_ideal_run_at_that_concurrency():
    """Calls of uneven length, 2 at a time: the least time with these calls is 4 (the long
    first call keeps one worker while the other does two), although no chain of calls two
    places apart is longer than 3."""
    calls = [
        Call("ReplaceIamInstanceProfileAssociation", 0, 2, 1),
        Call("ReplaceIamInstanceProfileAssociation", 0, 1, 2),
        Call("ReplaceIamInstanceProfileAssociation", 1, 3, 2),
        Call("ReplaceIamInstanceProfileAssociation", 2, 4, 1),
    ]
    path = Recording(calls).critical_path(bound=({"ReplaceIamInstanceProfileAssociation"}, 2))
    assert path.seconds == 4 and len(path) == 2
    # With as many workers as calls, nothing waits: the longest call.
    wide = Recording(calls).critical_path(bound=({"ReplaceIamInstanceProfileAssociation"}, 4))
    assert wide.seconds == 2


def test_bounded_path_keeps_declared_dependencies():
    """A detach then its attach (a stopped instance) beside 3 replaces, 2 at a time, after a
    read: the read, then the detach and the attach on one worker while the other takes
    the replaces (3 calls), all of length 1: 1 + 3."""
    read = Call("DescribeInstances", 0, 1, 9)
    calls = [
        read,
        Call("DisassociateIamInstanceProfile", 1, 2, 1),
        Call("ReplaceIamInstanceProfileAssociation", 1, 2, 2),
        Call("AssociateIamInstanceProfile", 2, 3, 1),
        Call("ReplaceIamInstanceProfileAssociation", 2, 3, 2),
        Call("ReplaceIamInstanceProfileAssociation", 3, 4, 2),
    ]
    changes = {
        "DisassociateIamInstanceProfile",
        "AssociateIamInstanceProfile",
        "ReplaceIamInstanceProfileAssociation",
    }
    after = {c: {"DescribeInstances"} for c in changes}
    after["AssociateIamInstanceProfile"] = {"DescribeInstances", "DisassociateIamInstanceProfile"}
    path = Recording(calls).critical_path(after, bound=(changes, 2))
    assert path.seconds == 4 and path.calls[0] is read
