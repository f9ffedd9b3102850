"""A change whose answer was lost (read timeout, connection closed, unreadable answer, or a
botocore retry that answered "already exists"), against a real moto server, on SQLite and
PostgreSQL: the audit never says "failed" for a change AWS may have made. The outcome is
written `unknown`, then the reconciler checks AWS at once and appends what it found; the
operations engine counts a change found made as done, so a rollback undoes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from sqlalchemy import select

from app.audit.audited import AuditContext, Change
from app.audit.reconcile import RECONCILER, reconciler_for
from app.audit.verify import verify_database
from app.aws.errors import AlreadyExists, AnswerLost, NotFound, TookEffect
from app.models import AuditEvent
from app.wizard.create import RoleCreator
from tests.aws.test_audit_reconcile import TRUST, svc  # noqa: F401 - SQLite/PostgreSQL fixture
from tests.aws.test_operations_engine import ec2_role


@contextmanager
def hooked(services: Any, event: str, handler: Callable[..., Any]) -> Iterator[None]:
    """`handler` on these services' client of the event's service (`after-call.ec2.…`: EC2,
    in the services' region; the clients are built for this test alone)."""
    events = services.clients.client(event.split(".")[1]).meta.events
    events.register_first(event, handler)
    try:
        yield
    finally:
        events.unregister(event, handler)


def lose_answer(times: int = 1) -> Callable[..., None]:
    """A hook that raises botocore's ReadTimeoutError the first `times` times it runs: on
    `after-call` the request reached the sandbox and took effect, only its answer is lost;
    on `before-call` the request was never sent."""
    left = [times]

    def handler(**_kwargs: Any) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise ReadTimeoutError(endpoint_url="http://sandbox.invalid/")

    return handler


def unreachable(**_kwargs: Any) -> None:
    """A hook for a check that cannot reach AWS (the connection cannot be made)."""
    raise EndpointConnectionError(endpoint_url="http://sandbox.invalid/")


def event_entries(services: Any, action: str, operation_id: str) -> list[tuple[Any, ...]]:
    """(kind, outcome, actor, error_code, params) of every entry of the operation's
    first `action` event, in ledger order."""
    with services.db.sessions() as session:
        event_id = session.scalar(
            select(AuditEvent.event_id)
            .where(
                AuditEvent.operation_id == operation_id,
                AuditEvent.action == action,
                AuditEvent.kind == "intent",
            )
            .order_by(AuditEvent.seq)
        )
        rows = session.execute(
            select(
                AuditEvent.kind,
                AuditEvent.outcome,
                AuditEvent.actor,
                AuditEvent.error_code,
                AuditEvent.params,
            )
            .where(AuditEvent.event_id == event_id)
            .order_by(AuditEvent.seq)
        )
        return [tuple(r) for r in rows]


def role_exists(services: Any, name: str) -> bool:
    try:
        services.iam.get_role(name)
    except NotFound:
        return False
    return True


def create_role(services: Any, ctx: AuditContext, name: str) -> Any:
    return services.audited.call(
        ctx, Change(name), services.iam.create_role, name=name, trust_policy=TRUST
    )


def test_a_change_made_whose_answer_was_lost_is_unknown_then_settled_succeeded(svc):  # noqa: F811
    ctx = AuditContext(actor="alice")
    lost = hooked(svc, "after-call.iam.CreateRole", lose_answer())
    with lost, pytest.raises(TookEffect) as raised:
        create_role(svc, ctx, "lost-made")

    assert isinstance(raised.value.lost, AnswerLost) and raised.value.code == "AnswerLost"
    assert "found the change made" in raised.value.plain
    assert role_exists(svc, "lost-made")
    entries = event_entries(svc, "iam:CreateRole", ctx.operation_id)
    assert [(kind, outcome, actor) for kind, outcome, actor, _, _ in entries] == [
        ("intent", "pending", "alice"),
        ("outcome", "unknown", "alice"),
        ("outcome", "succeeded", RECONCILER),
    ]
    assert entries[1][3] == "AnswerLost"
    assert entries[2][4]["checked_with"] == "iam:GetRole"
    assert verify_database(svc.db).ok


def test_a_lost_answer_of_a_request_never_sent_is_settled_failed(svc):  # noqa: F811
    ctx = AuditContext(actor="alice")
    never_sent = hooked(svc, "before-call.iam.CreateRole", lose_answer())
    with never_sent, pytest.raises(AnswerLost):
        create_role(svc, ctx, "lost-never")

    assert not role_exists(svc, "lost-never")
    entries = event_entries(svc, "iam:CreateRole", ctx.operation_id)
    assert [(kind, outcome, actor) for kind, outcome, actor, _, _ in entries] == [
        ("intent", "pending", "alice"),
        ("outcome", "unknown", "alice"),
        ("outcome", "failed", RECONCILER),
    ]
    assert "No role named lost-never" in entries[2][4]["reconciliation"]
    assert verify_database(svc.db).ok


def test_a_create_whose_answer_was_lost_is_undone_by_the_rollback(svc):  # noqa: F811
    ctx = AuditContext(actor="alice")
    with hooked(svc, "after-call.iam.CreateRole", lose_answer()):
        outcome = RoleCreator(svc).run(ec2_role("lost-run"), ctx)

    assert not outcome.ok and outcome.failed_step == "Create the role"
    assert isinstance(outcome.error, TookEffect)
    assert outcome.rolled_back == ["Delete the role"] and outcome.rollback_errors == []
    assert not role_exists(svc, "lost-run")  # the undo ran: nothing orphaned
    entries = event_entries(svc, "iam:CreateRole", ctx.operation_id)
    assert [outcome for _, outcome, _, _, _ in entries] == ["pending", "unknown", "succeeded"]
    assert event_entries(svc, "iam:DeleteRole", ctx.operation_id)[-1][1] == "succeeded"
    assert verify_database(svc.db).ok


def test_an_attach_whose_answer_was_lost_is_undone_by_the_rollback(svc):  # noqa: F811
    ctx = AuditContext(actor="alice")
    with hooked(svc, "after-call.iam.AttachRolePolicy", lose_answer()):
        outcome = RoleCreator(svc).run(ec2_role("lost-attach"), ctx)

    assert not outcome.ok and outcome.failed_step.startswith("Attach ")
    assert isinstance(outcome.error, TookEffect)
    assert outcome.rollback_errors == []
    # Both attaches are detached, the one whose answer was lost too: else DeleteRole would
    # have failed with DeleteConflict.
    assert {"Detach ReadOnlyAccess", "Detach AmazonS3ReadOnlyAccess", "Delete the role"} <= set(
        outcome.rolled_back
    )
    assert not role_exists(svc, "lost-attach")
    with svc.db.sessions() as session:
        lost = session.scalar(
            select(AuditEvent.event_id).where(
                AuditEvent.operation_id == ctx.operation_id,
                AuditEvent.kind == "outcome",
                AuditEvent.outcome == "unknown",
            )
        )
        entries = session.execute(
            select(AuditEvent.kind, AuditEvent.outcome, AuditEvent.actor, AuditEvent.error_code)
            .where(AuditEvent.event_id == lost)
            .order_by(AuditEvent.seq)
        ).all()
    assert [tuple(e) for e in entries] == [
        ("intent", "pending", "alice", None),
        ("outcome", "unknown", "alice", "AnswerLost"),
        ("outcome", "succeeded", RECONCILER, None),
    ]
    assert verify_database(svc.db).ok


def resend_after_lost_answer(services: Any) -> Callable[..., Any]:
    """A `before-send` hook for CreateRole: the first attempt is really sent to the sandbox
    (which makes the role), then its answer is 'lost' (ReadTimeoutError raised while
    sending, as botocore's HTTP session does). botocore's standard retry mode then resends
    the request itself, and the sandbox answers EntityAlreadyExists."""
    client = services.clients.client("iam")
    sent = [0]

    def handler(request: Any, **_kwargs: Any) -> None:
        sent[0] += 1
        if sent[0] == 1:
            client._endpoint.http_session.send(request)
            raise ReadTimeoutError(endpoint_url=request.url)

    return handler


def test_a_retry_answered_already_exists_is_settled_from_aws(svc):  # noqa: F811
    ctx = AuditContext(actor="alice")
    resent = hooked(svc, "before-send.iam.CreateRole", resend_after_lost_answer(svc))
    with resent, pytest.raises(TookEffect) as raised:
        create_role(svc, ctx, "lost-retried")

    lost = raised.value.lost
    assert isinstance(lost, AlreadyExists) and lost.retried == 1
    entries = event_entries(svc, "iam:CreateRole", ctx.operation_id)
    assert [(kind, outcome, actor, code) for kind, outcome, actor, code, _ in entries] == [
        ("intent", "pending", "alice", None),
        ("outcome", "unknown", "alice", "EntityAlreadyExists"),
        ("outcome", "succeeded", RECONCILER, None),
    ]
    assert verify_database(svc.db).ok


def test_a_retried_create_in_a_run_is_undone_by_the_rollback(svc):  # noqa: F811
    ctx = AuditContext(actor="alice")
    with hooked(svc, "before-send.iam.CreateRole", resend_after_lost_answer(svc)):
        outcome = RoleCreator(svc).run(ec2_role("lost-retried-run"), ctx)

    assert not outcome.ok and outcome.failed_step == "Create the role"
    assert isinstance(outcome.error, TookEffect) and outcome.error.code == "EntityAlreadyExists"
    assert outcome.rolled_back == ["Delete the role"]
    assert not role_exists(svc, "lost-retried-run")


def test_already_exists_without_a_retry_is_still_failed(svc):  # noqa: F811
    """A role that existed before the call: AWS answered at once, nothing was lost."""
    create_role(svc, AuditContext(), "there-before")
    ctx = AuditContext(actor="alice")
    with pytest.raises(AlreadyExists) as raised:
        create_role(svc, ctx, "there-before")
    assert raised.value.retried == 0
    entries = event_entries(svc, "iam:CreateRole", ctx.operation_id)
    assert [outcome for _, outcome, _, _, _ in entries] == ["pending", "failed"]


def test_a_lost_answer_aws_cannot_be_asked_about_stays_unknown_and_is_not_undone(svc):  # noqa: F811
    """The check itself cannot reach AWS: the event stays unknown (the truth), the step
    failed, and nothing is undone on a guess."""
    ctx = AuditContext(actor="alice")

    with (
        hooked(svc, "after-call.iam.CreateRole", lose_answer()),
        hooked(svc, "before-call.iam.GetRole", unreachable),
    ):
        outcome = RoleCreator(svc).run(ec2_role("lost-unchecked"), ctx)

    assert not outcome.ok and outcome.failed_step == "Create the role"
    assert isinstance(outcome.error, AnswerLost)
    assert outcome.rolled_back == []
    entries = event_entries(svc, "iam:CreateRole", ctx.operation_id)
    assert [(kind, outcome) for kind, outcome, _, _, _ in entries] == [
        ("intent", "pending"),
        ("outcome", "unknown"),
    ]
    assert role_exists(svc, "lost-unchecked")  # made; the ledger says unknown, not failed
    assert verify_database(svc.db).ok


def test_a_lost_answer_left_unchecked_is_checked_at_the_next_start(svc):  # noqa: F811
    """AWS could not be asked when the answer was lost: the next start-up reconciliation
    asks, and appends what it found; a verdict of its own is not asked again."""
    ctx = AuditContext(actor="alice")

    with (
        hooked(svc, "after-call.iam.CreateRole", lose_answer()),
        hooked(svc, "before-call.iam.GetRole", unreachable),
    ):
        assert not RoleCreator(svc).run(ec2_role("lost-then-checked"), ctx).ok

    settled = reconciler_for(svc, fresh_sandbox=False).run()  # the next start
    assert [(s.action, s.verdict.outcome if s.verdict else None) for s in settled] == [
        ("iam:CreateRole", "succeeded")
    ]
    entries = event_entries(svc, "iam:CreateRole", ctx.operation_id)
    assert [(kind, outcome, actor) for kind, outcome, actor, _, _ in entries] == [
        ("intent", "pending", "alice"),
        ("outcome", "unknown", "alice"),
        ("outcome", "succeeded", RECONCILER),
    ]
    assert reconciler_for(svc, fresh_sandbox=False).run() == []  # settled: not asked again
    assert verify_database(svc.db).ok


def test_an_unknown_the_reconciler_wrote_is_not_asked_again(svc):  # noqa: F811
    """A trust update never sent: its trust policy is not the requested one, which cannot
    tell "not made" from "changed again since", so the reconciler's verdict is unknown. That
    verdict is the event's answer: later starts do not ask again."""
    ctx = AuditContext(actor="alice")
    create_role(svc, ctx, "lost-trust")
    wanted = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    never_sent = hooked(svc, "before-call.iam.UpdateAssumeRolePolicy", lose_answer())
    with never_sent, pytest.raises(AnswerLost):
        svc.audited.call(
            ctx,
            Change("lost-trust"),
            svc.iam.update_trust_policy,
            role_name="lost-trust",
            document=wanted,
        )
    entries = event_entries(svc, "iam:UpdateAssumeRolePolicy", ctx.operation_id)
    assert [(outcome, actor) for _, outcome, actor, _, _ in entries][-1] == ("unknown", RECONCILER)
    assert reconciler_for(svc, fresh_sandbox=False).run() == []
