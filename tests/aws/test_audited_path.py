"""The audited path against a real moto server: intent before, outcome after, nothing sent
to AWS when the intent cannot be written."""

import pytest
from sqlalchemy import select

from app.audit.audited import AuditContext, Change
from app.audit.chain import GENESIS_HASH, entry_hash
from app.aws.errors import AlreadyExists, NotFound
from app.models import AuditEvent

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


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
    def broken(_new):
        raise RuntimeError("database is gone")

    monkeypatch.setattr(services.audit_log, "append", broken)
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
