"""The operations engine against the sandbox: dependency order, undo of a failed unit, the
stop rule, side-by-side steps, progress rebuilt from the ledger, start-up closing of runs cut
short, and ledger faults settled by the background settle loop (issue 12, item 7) with real
PostgreSQL connection terminations and a held SQLite write lock."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, event, text

from app import migrate
from app.audit.audited import AuditContext
from app.aws.errors import NotFound
from app.operations import progress
from app.operations.engine import DONE, NOT_STARTED, UNDONE, Engine
from app.operations.plan import STOP, Plan, PlanError, Step, Undo
from app.operations.settle import close_interrupted
from app.services import build_services
from app.settings import Settings
from app.wizard.create import RoleCreator
from app.wizard.steps import CreatePlan
from app.wizard.trust import service_trust
from tests.aws.test_audit_reconcile import svc  # noqa: F401 - the SQLite/PostgreSQL fixture
from tests.conftest import POSTGRES_ADMIN_URL

TRUST = service_trust("ec2.amazonaws.com")
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
MISSING = "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"


def role_steps(services, name, policies, *, unit=""):
    iam, arn = services.iam, f"arn:aws:iam::{services.identity.account}:role/{name}"
    steps = [
        Step(
            "role",
            "Create the role",
            arn,
            iam.create_role,
            {"name": name, "trust_policy": TRUST},
            undo=Undo("Delete the role", iam.delete_role, {"name": name}),
            unit=unit,
        )
    ]
    for i, policy in enumerate(policies):
        steps.append(
            Step(
                f"attach{i}",
                f"Attach {policy}",
                arn,
                iam.attach_role_policy,
                {"role_name": name, "policy_arn": policy},
                ("role",),
                Undo("Detach", iam.detach_role_policy, {"role_name": name, "policy_arn": policy}),
                unit=unit,
            )
        )
    return steps


def exists(services, name):
    try:
        services.iam.get_role(name)
    except NotFound:
        return False
    return True


def run(services, plan, workers=1):
    ctx = AuditContext(actor="tester")
    engine = Engine(services, workers=workers)
    engine.record_start(ctx, plan)
    return ctx, engine.run(ctx, plan)


def test_plans_refuse_unknown_and_circular_dependencies(services):
    iam = services.iam
    with pytest.raises(PlanError):
        Plan("x", "x", (Step("a", "a", "t", iam.delete_role, {}, ("b",)),))
    with pytest.raises(PlanError):
        Plan(
            "x",
            "x",
            (
                Step("a", "a", "t", iam.delete_role, {}, ("b",)),
                Step("b", "b", "t", iam.delete_role, {}, ("a",)),
            ),
        )


def test_steps_run_after_their_dependencies_and_progress_comes_from_the_ledger(services):
    plan = Plan("test", "Two policies", tuple(role_steps(services, "eng-ok", [READ_ONLY])))
    assert [[s.key for s in w] for w in plan.waves()] == [["role"], ["attach0"]]
    ctx, result = run(services, plan)
    assert result.ok and exists(services, "eng-ok")
    found = progress.load(services.db, ctx.operation_id)
    assert found.finished and found.ok
    assert [(s.key, s.status) for s in found.steps] == [("role", "done"), ("attach0", "done")]


def test_a_failed_step_undoes_its_unit_in_reverse_and_leaves_other_units(services):
    steps = role_steps(services, "eng-a", [READ_ONLY, MISSING], unit="a") + [
        Step(
            f"b:{s.key}",
            s.label,
            s.target,
            s.call,
            {**s.kwargs, **({"name": "eng-b"} if "name" in s.kwargs else {"role_name": "eng-b"})},
            tuple(f"b:{d}" for d in s.depends_on),
            None,
            unit="b",
        )
        for s in role_steps(services, "eng-b", [READ_ONLY])
    ]
    ctx, result = run(services, Plan("test", "Units", tuple(steps)))
    assert result.steps["attach1"].error is not None
    assert [result.steps[k].status for k in ("role", "attach0")] == [UNDONE, UNDONE]
    assert result.undone_order == ["Detach", "Delete the role"]  # newest first
    assert not exists(services, "eng-a") and exists(services, "eng-b")
    statuses = {s.key: s.status for s in progress.load(services.db, ctx.operation_id).steps}
    assert statuses["role"] == "undone" and statuses["attach1"] == "failed"
    assert statuses["b:role"] == "done"


def test_the_stop_rule_stops_without_undo_and_lists_what_was_not_started(services):
    steps = role_steps(services, "eng-stop", [MISSING, READ_ONLY])
    steps[2] = Step(**{**steps[2].__dict__, "depends_on": ("role", "attach0")})
    ctx, result = run(services, Plan("test", "Stop", tuple(steps), on_failure=STOP))
    assert result.steps["role"].status == DONE and exists(services, "eng-stop")
    assert result.steps["attach1"].status == NOT_STARTED
    found = progress.load(services.db, ctx.operation_id)
    assert [s.status for s in found.steps] == ["done", "failed", "not_started"]


def test_independent_steps_run_side_by_side(svc):  # noqa: F811 - the imported fixture
    """Three attaches depend only on the role: with three workers they overlap in time, and
    their audit entries (written from three threads) form one valid chain."""
    from app.audit.verify import verify_database

    services = svc
    lock, running, peak = threading.Lock(), [0], [0]

    def before(**_kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3)  # stands for AWS's answer time

    def after(**_kwargs):
        with lock:
            running[0] -= 1

    events = services.clients.client("iam").meta.events
    events.register("before-call.iam.AttachRolePolicy", before)
    events.register("after-call.iam.AttachRolePolicy", after)
    policies = [
        READ_ONLY,
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess",
    ]
    try:
        plan = Plan("test", "Parallel", tuple(role_steps(services, "eng-par", policies)))
        assert plan.critical_path() == 2
        _, result = run(services, plan, workers=3)
    finally:
        events.unregister("before-call.iam.AttachRolePolicy", before)
        events.unregister("after-call.iam.AttachRolePolicy", after)
    assert result.ok and peak[0] == 3
    assert {p.arn for p in services.iam.list_attached_role_policies("eng-par")} == set(policies)
    assert verify_database(services.db).ok


def test_runs_cut_short_are_closed_at_start_up(services):
    plan = Plan("test", "Cut short", tuple(role_steps(services, "eng-cut", [READ_ONLY])))
    ctx = AuditContext(actor="tester")
    Engine(services).record_start(ctx, plan)  # ...and the process died before running it
    assert close_interrupted(services) == [ctx.operation_id]
    found = progress.load(services.db, ctx.operation_id)
    assert found.finished and found.interrupted
    assert [s.status for s in found.steps] == ["not_started", "not_started"]
    assert close_interrupted(services) == []


# Ledger faults: issue 12, item 7 ----------------------------------------------------------


def ec2_role(name):
    return CreatePlan(
        name=name,
        path="/",
        description="",
        max_session_duration=3600,
        tags=(),
        trust_policy=TRUST,
        policy_arns=(READ_ONLY, "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"),
        boundary_arn=None,
        inline_name="inline",
        inline_document={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
        },
        instance_profile=True,
    )


def fault_after_create_role(services, fault):
    """Call `fault` right after AWS answers CreateRole (the database fails just then)."""
    client = services.clients.client("iam")

    def after(**_kwargs):
        fault()

    client.meta.events.register("after-call.iam.CreateRole", after)
    return lambda: client.meta.events.unregister("after-call.iam.CreateRole", after)


def half_built(services, names):
    left = [n for n in names if exists(services, n)]
    for name in names:
        try:
            services.iam.get_instance_profile(name)
        except NotFound:
            continue
        left.append(f"profile {name}")
    return left


SETTLED_WITHIN = 5.0  # seconds after the run returns: the fault lasts at most one second


def trials(services, prefix, fault, count):
    """`count` EC2-role creates with `fault` after each CreateRole; the outcomes as settled
    (each must settle within SETTLED_WITHIN seconds)."""
    services.settler.interval = 0.2
    settled = []
    remove = fault_after_create_role(services, fault)
    try:
        for i in range(count):
            done = threading.Event()

            def finish(outcome, done=done):
                settled.append(outcome)
                done.set()

            RoleCreator(services).run(ec2_role(f"{prefix}-{i}"), AuditContext(actor="t"), finish)
            assert done.wait(SETTLED_WITHIN), f"trial {i} not settled in time"
    finally:
        remove()
    assert services.settler.wait_idle(10)
    return settled


def test_terminated_postgres_connections_leave_no_half_built_role(postgres_url, sandbox):
    migrate.upgrade(postgres_url)
    services = build_services(
        Settings(database_url=postgres_url, mode="sandbox"), sandbox_endpoint=sandbox.endpoint_url
    )
    killer = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    database = postgres_url.rsplit("/", 1)[-1]

    def terminate():
        with killer.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )

    # A server that has written to the ledger keeps its writer connection (app.audit.log):
    # the fault must find it open in the first trial too, not a fresh one from the pool.
    services.audit_log.append(AuditContext(actor="t").record("roledesk:Test"))
    try:
        outcomes = trials(services, "pg-fault", terminate, 20)
        names = [f"pg-fault-{i}" for i in range(20)]
        assert half_built(services, names) == []
        faults = [o for o in outcomes if o.ledger_fault]
        assert faults, "no trial hit the fault"
        for o in faults:
            assert o.failure_record()["code"] == "AuditLedgerUnavailable"
    finally:
        killer.dispose()
        services.db.dispose()


def test_a_held_sqlite_write_lock_leaves_no_half_built_role(services, sqlite_url):
    # A short busy timeout so each trial's fault is quick (RoleDesk waits 30 s by default).
    @event.listens_for(services.db.engine, "connect")
    def short_wait(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA busy_timeout=100")

    services.db.engine.dispose()
    path = sqlite_url.removeprefix("sqlite:///")

    def hold_lock():
        """Another process's write transaction, held for a second (longer than the wait)."""
        held = threading.Event()

        def holder():
            other = sqlite3.connect(path, timeout=5, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(1.0)
            other.execute("ROLLBACK")
            other.close()

        threading.Thread(target=holder, daemon=True).start()
        held.wait(5)

    outcomes = trials(services, "lite-fault", hold_lock, 20)
    assert half_built(services, [f"lite-fault-{i}" for i in range(20)]) == []
    assert all(o.ledger_fault for o in outcomes)
    assert all(o.rolled_back[-1] == "Delete the role" for o in outcomes)
