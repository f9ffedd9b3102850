"""Start-up reconciliation against a real moto server, on SQLite and PostgreSQL: a crash
between an AWS call and its outcome entry is settled by asking AWS, never dropped."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import migrate
from app.audit.audited import AuditContext
from app.audit.log import NewEntry
from app.audit.reconcile import RECONCILER, Reconciler, reconcile_at_start
from app.audit.verify import verify_database
from app.aws.calls import audit_guard
from app.models import AuditEvent, AuditEventStatus
from app.services import build_services
from app.settings import Settings
from app.wizard.trust import service_trust

TRUST = service_trust("ec2.amazonaws.com")
POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


@pytest.fixture(params=["sqlite", "postgresql"])
def svc(request, sandbox):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    migrate.upgrade(url)
    built = build_services(Settings(database_url=url), sandbox_endpoint=sandbox.endpoint_url)
    yield built
    built.db.dispose()


def crash_after_call(services, action, target, params, call=None, account_id=None):
    """Write the intent, make the AWS call (or not), and 'crash' before the outcome; in the
    hub account unless `account_id` names another."""
    ctx = AuditContext(actor="alice")
    intent = services.audit_log.append(
        NewEntry(
            kind="intent",
            action=action,
            actor=ctx.actor,
            outcome="pending",
            operation_id=ctx.operation_id,
            target=target,
            params=params,
            account_id=account_id or services.identity.account,
            region="us-east-1",
        )
    )
    if call is not None:
        with audit_guard(action):
            call()
    return intent.seq


def outcomes(services):
    with services.db.sessions() as session:
        rows = session.execute(
            select(
                AuditEventStatus.seq, AuditEventStatus.outcome, AuditEvent.actor, AuditEvent.params
            ).join(AuditEvent, AuditEvent.seq == AuditEventStatus.outcome_seq)
        )
        return {r.seq: (r.outcome, r.actor, r.params) for r in rows}


def test_pending_intents_are_settled_from_what_aws_shows(svc):
    iam = svc.iam
    arn = f"arn:aws:iam::{svc.identity.account}:role/crashed"
    created = crash_after_call(
        svc,
        "iam:CreateRole",
        arn,
        {"name": "crashed"},
        lambda: iam.create_role(name="crashed", trust_policy=TRUST),
    )
    never = crash_after_call(svc, "iam:CreateRole", "arn:aws:iam::1:role/never", {"name": "never"})
    attached = crash_after_call(
        svc,
        "iam:AttachRolePolicy",
        arn,
        {"role_name": "crashed", "policy_arn": POLICY},
        lambda: iam.attach_role_policy("crashed", POLICY),
    )
    not_attached = crash_after_call(
        svc,
        "iam:AttachRolePolicy",
        arn,
        {"role_name": "crashed", "policy_arn": "arn:aws:iam::aws:policy/PowerUserAccess"},
    )
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    inline = crash_after_call(
        svc,
        "iam:PutRolePolicy",
        arn,
        {"role_name": "crashed", "policy_name": "p", "document": document},
        lambda: iam.put_role_policy("crashed", "p", document),
    )
    odd = crash_after_call(svc, "iam:CreateSAMLProvider", "x", {"name": "x"})

    settled = Reconciler(svc.db, svc.audit_log, svc.iam, svc.ec2).run()

    assert [s.seq for s in settled] == [created, never, attached, not_attached, inline, odd]
    found = outcomes(svc)
    assert found[created][0] == "succeeded" and found[created][1] == RECONCILER
    assert found[created][2]["checked_with"] == "iam:GetRole"
    assert found[never][0] == "failed"
    assert found[attached][0] == "succeeded"
    assert found[not_attached][0] == "failed"
    assert found[inline][0] == "succeeded"
    assert found[odd][0] == "unknown" and "no way to check" in found[odd][2]["reconciliation"]
    assert Reconciler(svc.db, svc.audit_log, svc.iam, svc.ec2).pending() == []
    assert verify_database(svc.db).ok


def test_a_policy_delete_is_settled_by_whether_the_policy_is_gone(svc):
    from app.audit.audited import Change

    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
    arns = [f"arn:aws:iam::{svc.identity.account}:policy/crashed-{n}" for n in (1, 2)]
    for arn in arns:
        svc.audited.call(
            AuditContext(),
            Change(arn),
            svc.iam.create_policy,
            name=arn.rsplit("/", 1)[-1],
            document=document,
        )
    gone = crash_after_call(
        svc, "iam:DeletePolicy", arns[0], {"arn": arns[0]}, lambda: svc.iam.delete_policy(arns[0])
    )
    kept = crash_after_call(svc, "iam:DeletePolicy", arns[1], {"arn": arns[1]})

    settled = Reconciler(svc.db, svc.audit_log, svc.iam, svc.ec2).run()

    assert [(s.seq, s.verdict.outcome) for s in settled] == [(gone, "succeeded"), (kept, "failed")]
    assert outcomes(svc)[gone][2]["checked_with"] == "iam:GetPolicy"


def test_a_role_that_existed_before_the_intent_is_unknown_not_success(svc):
    from datetime import UTC, datetime, timedelta

    from app.audit.audited import Change

    svc.audited.call(
        AuditContext(), Change("r"), svc.iam.create_role, name="old", trust_policy=TRUST
    )
    seq = crash_after_call(svc, "iam:CreateRole", "old", {"name": "old"})
    intent = next(e for e in Reconciler(svc.db, svc.audit_log, svc.iam, svc.ec2).pending())
    assert intent.seq == seq
    # Pretend the intent came a day after the role was made.
    later = type(intent)(**{c.name: getattr(intent, c.name) for c in AuditEvent.__table__.columns})
    later.recorded_at = datetime.now(UTC) + timedelta(days=1)
    verdict = Reconciler(svc.db, svc.audit_log, svc.iam, svc.ec2).judge(later)
    assert verdict.outcome == "unknown" and "before this call" in verdict.note


def test_ec2_association_is_checked_with_describe_associations(svc):
    from app.sandbox_seed import seed

    seed(svc)
    ec2 = svc.ec2()
    bare = next(i for i in ec2.list_instances() if i.profile_arn is None and i.state == "running")
    profile = svc.iam.get_instance_profile("web-app-ec2")
    seq = crash_after_call(
        svc,
        "ec2:AssociateIamInstanceProfile",
        bare.instance_id,
        {"instance_id": bare.instance_id, "profile_arn": profile.arn},
        lambda: ec2.associate_profile(bare.instance_id, profile.arn),
    )
    settled = Reconciler(svc.db, svc.audit_log, svc.iam, svc.ec2).run()
    assert [(s.seq, s.verdict.outcome) for s in settled] == [(seq, "succeeded")]


def test_start_up_in_a_fresh_sandbox_marks_old_intents_unknown(svc):
    seq = crash_after_call(svc, "iam:CreateRole", "r", {"name": "r"})
    settled = reconcile_at_start(svc)
    assert [(s.seq, s.verdict.outcome) for s in settled] == [(seq, "unknown")]
    assert "earlier run of the sandbox" in outcomes(svc)[seq][2]["reconciliation"]
