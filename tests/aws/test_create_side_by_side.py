"""Create role with its independent calls side by side (issue 15), on SQLite and PostgreSQL:
the calls really overlap (real threads, AWS's answer time stood in for by a sleep), each
call's intent is in the ledger before the call is sent and its outcome after it, and a
failure in one of the side-by-side calls undoes everything the run made."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Self

from botocore.exceptions import ClientError
from sqlalchemy import func, select

from app.audit.audited import AuditContext
from app.aws.errors import NotFound
from app.models import AuditEvent
from app.services import PROFILES
from app.shared.models import SharedChange
from app.wizard.create import RoleCreator
from tests.aws.test_audit_reconcile import svc  # noqa: F401 - the SQLite/PostgreSQL fixture
from tests.aws.test_operations_engine import ec2_role

SIDE_BY_SIDE = ("AttachRolePolicy", "PutRolePolicy", "CreateInstanceProfile")
ANSWER_TIME = 0.2  # seconds: long enough that calls sent together surely overlap


class IamHooks:
    """`before` and `after` hooked on every call of RoleDesk's IAM client while entered."""

    events: Any

    def before(self, event_name: str, **_kwargs: Any) -> None:
        raise NotImplementedError

    def after(self, event_name: str, **_kwargs: Any) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.events.register("before-call.iam", self.before)
        self.events.register("after-call.iam", self.after)
        self.events.register("after-call-error.iam", self.after)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.events.unregister("before-call.iam", self.before)
        self.events.unregister("after-call.iam", self.after)
        self.events.unregister("after-call-error.iam", self.after)


class Watch(IamHooks):
    """botocore hooks on RoleDesk's IAM client: how many calls were in flight at once, and
    whether each call's intent was already committed when the call was sent."""

    def __init__(self, services, ctx: AuditContext) -> None:
        self.services, self.ctx = services, ctx
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.sent: Counter[str] = Counter()
        self.not_durable: list[str] = []
        self.events = services.clients.client("iam").meta.events

    def intents(self, action: str) -> int:
        with self.services.db.session() as session:  # a connection of its own: committed rows
            return int(
                session.scalar(
                    select(func.count()).where(
                        AuditEvent.operation_id == self.ctx.operation_id,
                        AuditEvent.kind == "intent",
                        AuditEvent.action == f"iam:{action}",
                    )
                )
                or 0
            )

    def before(self, event_name: str, **_kwargs) -> None:
        action = event_name.rsplit(".", 1)[-1]
        with self.lock:
            self.sent[action] += 1
            sent = self.sent[action]
            # Counted in flight as it is sent, before this hook's own read of the ledger: on
            # a loaded machine that read could outlast a call sent beside it (CI: peak 3).
            if action in SIDE_BY_SIDE:
                self.running += 1
                self.peak = max(self.peak, self.running)
        if self.intents(action) < sent:
            self.not_durable.append(action)
        if action in SIDE_BY_SIDE:
            time.sleep(ANSWER_TIME)

    def after(self, event_name: str, **_kwargs) -> None:
        if event_name.rsplit(".", 1)[-1] in SIDE_BY_SIDE:
            with self.lock:
                self.running -= 1


def ledger(services, operation_id):
    with services.db.session() as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.operation_id == operation_id, AuditEvent.kind != "record")
            .order_by(AuditEvent.seq)
        ).all()
        return [(r.seq, r.kind, r.action, r.outcome, r.event_id) for r in rows]


def assert_each_intent_before_its_outcome(entries):
    intents = {e: seq for seq, kind, _, _, e in entries if kind == "intent"}
    outcomes = {e: seq for seq, kind, _, _, e in entries if kind == "outcome"}
    assert intents.keys() == outcomes.keys()  # every call has both
    assert all(intents[e] < outcomes[e] for e in intents)


def exists(services, name, profile=False):
    try:
        (services.iam.get_instance_profile if profile else services.iam.get_role)(name)
    except NotFound:
        return False
    return True


def test_create_runs_side_by_side_and_each_intent_is_durable_before_its_call(svc):  # noqa: F811
    services = svc
    ctx = AuditContext(actor="tester")
    with Watch(services, ctx) as watch:
        outcome = RoleCreator(services).run(ec2_role("side-ok"), ctx)
    assert outcome.ok, outcome.failure_record()
    # Two attaches, the inline policy and the instance profile, all at once.
    assert watch.peak == 4
    assert watch.not_durable == []
    entries = ledger(services, ctx.operation_id)
    assert_each_intent_before_its_outcome(entries)
    seq_of = {(kind, action): seq for seq, kind, action, _, _ in entries}
    # The role before anything that needs it; the profile before the role joins it.
    assert seq_of[("outcome", "iam:CreateRole")] < min(
        seq
        for seq, kind, action, _, _ in entries
        if kind == "intent" and action != "iam:CreateRole"
    )
    assert (
        seq_of[("outcome", "iam:CreateInstanceProfile")]
        < seq_of[("intent", "iam:AddRoleToInstanceProfile")]
    )
    assert len(services.iam.list_attached_role_policies("side-ok")) == 2
    assert services.iam.get_instance_profile("side-ok").role_names == ("side-ok",)


def test_a_failed_side_by_side_call_undoes_everything_the_run_made(svc, monkeypatch):  # noqa: F811
    services = svc
    client = services.clients.client("iam")
    original = client.put_role_policy

    def refuse(**kwargs):
        time.sleep(ANSWER_TIME / 2)  # its siblings are in flight, and finish after it
        raise ClientError(
            {
                "Error": {"Code": "MalformedPolicyDocument", "Message": "injected"},
                "ResponseMetadata": {"RequestId": "req-side", "HTTPStatusCode": 400},
            },
            "PutRolePolicy",
        )

    monkeypatch.setattr(client, "put_role_policy", refuse)
    ctx = AuditContext(actor="tester")
    with Watch(services, ctx) as watch:
        outcome = RoleCreator(services).run(ec2_role("side-fail"), ctx)
    monkeypatch.setattr(client, "put_role_policy", original)
    assert not outcome.ok and outcome.failed_step == "Add inline policy inline"
    assert watch.peak == 3  # the two attaches and the instance profile, beside the refusal
    assert watch.not_durable == []
    assert not exists(services, "side-fail") and not exists(services, "side-fail", profile=True)
    assert outcome.rollback_errors == []
    assert outcome.rolled_back == [
        "Delete the instance profile",
        "Detach AmazonS3ReadOnlyAccess",
        "Detach ReadOnlyAccess",
        "Delete the role",
    ]
    entries = ledger(services, ctx.operation_id)
    assert_each_intent_before_its_outcome(entries)
    failed = [action for _, kind, action, result, _ in entries if result == "failed"]
    assert failed == ["iam:PutRolePolicy"]
    assert "iam:AddRoleToInstanceProfile" not in {action for _, _, action, _, _ in entries}


class SlowAttaches(IamHooks):
    """botocore hooks: AttachRolePolicy answers late; when each action was first sent and
    last answered (time.monotonic)."""

    def __init__(self, services, delay: float) -> None:
        self.events = services.clients.client("iam").meta.events
        self.delay = delay
        self.lock = threading.Lock()
        self.sent: dict[str, float] = {}
        self.answered: dict[str, float] = {}

    def before(self, event_name: str, **_kwargs) -> None:
        action = event_name.rsplit(".", 1)[-1]
        with self.lock:
            self.sent.setdefault(action, time.monotonic())
        if action == "AttachRolePolicy":
            time.sleep(self.delay)

    def after(self, event_name: str, **_kwargs) -> None:
        with self.lock:
            self.answered[event_name.rsplit(".", 1)[-1]] = time.monotonic()


def test_the_role_joins_its_profile_without_waiting_for_slow_attaches(svc):  # noqa: F811
    """Steps start when the steps they depend on are done, not wave by wave: the role joins
    its instance profile while the (slow) attaches are still in flight."""
    services = svc
    ctx = AuditContext(actor="tester")
    with SlowAttaches(services, 3 * ANSWER_TIME) as slow:
        outcome = RoleCreator(services).run(ec2_role("side-dag"), ctx)
    assert outcome.ok, outcome.failure_record()
    assert slow.sent["AddRoleToInstanceProfile"] < slow.answered["AttachRolePolicy"]
    assert_each_intent_before_its_outcome(ledger(services, ctx.operation_id))
    assert len(services.iam.list_attached_role_policies("side-dag")) == 2
    assert services.iam.get_instance_profile("side-dag").role_names == ("side-dag",)


def test_a_failure_beside_slow_attaches_is_undone_once_they_answer(svc, monkeypatch):  # noqa: F811
    """AddRoleToInstanceProfile fails while the attaches are still in flight: the undo waits
    for them, then undoes them too (nothing the run made is left)."""
    services = svc
    client = services.clients.client("iam")

    def refuse(**_kwargs):
        raise ClientError(
            {
                "Error": {"Code": "LimitExceeded", "Message": "injected"},
                "ResponseMetadata": {"RequestId": "req-dag", "HTTPStatusCode": 409},
            },
            "AddRoleToInstanceProfile",
        )

    monkeypatch.setattr(client, "add_role_to_instance_profile", refuse)
    ctx = AuditContext(actor="tester")
    with SlowAttaches(services, 3 * ANSWER_TIME) as slow:
        outcome = RoleCreator(services).run(ec2_role("side-dag-fail"), ctx)
    assert not outcome.ok and outcome.failed_step == "Add the role to the instance profile"
    assert slow.sent["DeleteRole"] > slow.answered["AttachRolePolicy"]
    assert outcome.rollback_errors == []
    assert outcome.rolled_back == [
        "Delete the instance profile",
        "Delete inline policy inline",
        "Detach AmazonS3ReadOnlyAccess",
        "Detach ReadOnlyAccess",
        "Delete the role",
    ]
    assert not exists(services, "side-dag-fail")
    assert not exists(services, "side-dag-fail", profile=True)
    assert_each_intent_before_its_outcome(ledger(services, ctx.operation_id))


def test_the_profile_notices_are_written_before_the_run_ends(svc, monkeypatch):  # noqa: F811
    """The instance profiles' change notices are written off the calls' path, but the run
    does not end before they are: another process is told "read the profile list again"
    once for CreateInstanceProfile and once for AddRoleToInstanceProfile."""
    services = svc
    publish = services.shared.publish

    def slow_publish(*args):
        time.sleep(ANSWER_TIME)  # a notice written after the run would be missed below
        publish(*args)

    monkeypatch.setattr(services.shared, "publish", slow_publish)

    def notices():
        with services.db.session() as session:
            count = session.scalar(select(func.count()).where(SharedChange.inventory == PROFILES))
            return int(count or 0)

    before = notices()
    outcome = RoleCreator(services).run(ec2_role("side-notice"), AuditContext(actor="t"))
    assert outcome.ok, outcome.failure_record()
    assert notices() == before + 2
