"""The audited path against a real moto server: intent before, outcome after, nothing sent
to AWS when the intent cannot be written."""

import pytest
from sqlalchemy import select

from app.audit.audited import AuditContext, Change
from app.audit.chain import GENESIS_HASH, entry_hash
from app.aws.errors import AlreadyExists, NotFound
from app.models import AuditEvent
from app.wizard.trust import service_trust

TRUST = service_trust("ec2.amazonaws.com")


def entries(services):
    with services.db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def test_success_writes_intent_then_outcome_with_request_id(services):
    ctx = AuditContext(actor="alice", source_ip="10.0.0.1", user_agent="pytest")
    arn = f"arn:aws:iam::{services.identity.account}:role/app"
    role = services.audited.call(
        ctx, Change(arn), services.iam.create_role, name="app", trust_policy=TRUST
    )
    assert role.arn == arn
    intent, outcome = entries(services)
    assert (intent.kind, intent.outcome, intent.action) == ("intent", "pending", "iam:CreateRole")
    assert (outcome.kind, outcome.outcome) == ("outcome", "succeeded")
    assert outcome.event_id == intent.event_id
    assert intent.operation_id == outcome.operation_id == ctx.operation_id
    assert intent.actor == "alice" and intent.source_ip == "10.0.0.1"
    assert intent.account_id == services.identity.account
    assert intent.params["name"] == "app"
    assert outcome.aws_request_id
    assert intent.prev_hash == GENESIS_HASH and outcome.prev_hash == intent.hash
    values = {c.name: getattr(outcome, c.name) for c in AuditEvent.__table__.columns}
    assert entry_hash(intent.hash, values) == outcome.hash


def test_failure_is_recorded_with_aws_code_and_raised(services):
    ctx = AuditContext(actor="bob")
    services.audited.call(
        ctx, Change("r"), services.iam.create_role, name="dup", trust_policy=TRUST
    )
    with pytest.raises(AlreadyExists):
        services.audited.call(
            ctx, Change("r"), services.iam.create_role, name="dup", trust_policy=TRUST
        )
    last = entries(services)[-1]
    assert last.outcome == "failed"
    assert last.error_code == "EntityAlreadyExists"
    assert "dup" in last.error_message


def test_no_aws_call_when_the_intent_cannot_be_written(services, monkeypatch):
    def broken(_entries):
        raise RuntimeError("database is gone")

    # The ledger's writer itself fails, whichever way the entry is submitted.
    monkeypatch.setattr(services.audit_log, "append_many", broken)
    with pytest.raises(RuntimeError):
        services.audited.call(
            AuditContext(), Change("x"), services.iam.create_role, name="never", trust_policy=TRUST
        )
    with pytest.raises(NotFound):
        services.iam.get_role("never")


def test_secrets_in_parameters_are_redacted(services):
    services.audited.call(
        AuditContext(),
        Change("p", params={"Name": "x", "Password": "hunter2"}),
        services.iam.create_role,
        name="withparams",
        trust_policy=TRUST,
    )
    assert entries(services)[0].params == {"Name": "x", "Password": "[redacted]"}


def test_a_sequence_commits_each_outcome_with_the_next_intent(services, monkeypatch):
    """n calls in one sequence: n + 1 commits, entries in call order, every intent durable
    before its call, the failed call's outcome written on exit."""
    commits = []
    append_many = services.audit_log.append_many

    def counting(batch):
        commits.append([(e.kind, e.action) for e in batch])
        return append_many(batch)

    monkeypatch.setattr(services.audit_log, "append_many", counting)
    ctx = AuditContext(actor="carol")
    seen_before_call = []
    with services.audited.sequence(ctx) as calls:
        calls.call(Change("a"), services.iam.create_role, name="seq-a", trust_policy=TRUST)
        seen_before_call.append(len(entries(services)))
        with pytest.raises(AlreadyExists):
            calls.call(Change("a"), services.iam.create_role, name="seq-a", trust_policy=TRUST)
    assert commits == [
        [("intent", "iam:CreateRole")],
        [("outcome", "iam:CreateRole"), ("intent", "iam:CreateRole")],
        [("outcome", "iam:CreateRole")],
    ]
    assert seen_before_call == [1]  # the first outcome waits for the next intent
    rows = entries(services)
    assert [(e.kind, e.outcome) for e in rows] == [
        ("intent", "pending"),
        ("outcome", "succeeded"),
        ("intent", "pending"),
        ("outcome", "failed"),
    ]
    assert rows[0].event_id == rows[1].event_id != rows[2].event_id == rows[3].event_id
    assert rows[3].error_code == "EntityAlreadyExists" and rows[1].aws_request_id
    assert {e.operation_id for e in rows} == {ctx.operation_id}
