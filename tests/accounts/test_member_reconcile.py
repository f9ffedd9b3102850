"""Start-up reconciliation of calls made in member accounts: each is checked in the account
it was made in (through the spoke role), not in the hub, where a role of the member account
is "not found" and a delete would be taken for done."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ReadTimeoutError
from sqlalchemy import select

from app.accounts.context import member_services
from app.accounts.hub import AccountHub
from app.audit.audited import AuditContext, Change
from app.audit.reconcile import RECONCILER, Reconciler, reconciler_for
from app.aws.calls import audit_guard
from app.aws.errors import TookEffect
from app.models import AuditEvent
from app.services import Services
from app.wizard.trust import service_trust
from tests.accounts.conftest import account, own_database
from tests.aws.test_audit_reconcile import crash_after_call

TRUST = service_trust("ec2.amazonaws.com")


def pending(services: Services, action: str, role: str, account_id: str) -> int:
    """An intent left pending by a 'crash' before its outcome, in a member account."""
    target = f"arn:aws:iam::{account_id}:role/{role}"
    seq: int = crash_after_call(
        services, action, target, {"role_name": role}, account_id=account_id
    )
    return seq


def test_calls_made_in_a_member_account_are_checked_there(
    org: Services, members: list[str], tmp_path: Path
):
    staging = members[1]
    with own_database(org, tmp_path) as services:
        hub = AccountHub(services.settings, services.clients, services.identity.account)
        member_iam = hub.iam(account(hub, staging), "alice")
        # Made in staging, and still there: the delete did not happen; the create did.
        with audit_guard("iam:CreateRole"):
            member_iam.create_role(name="reconciled-kept", trust_policy=TRUST)
        delete = pending(services, "iam:DeleteRole", "reconciled-kept", staging)
        create = pending(services, "iam:CreateRole", "reconciled-kept", staging)
        # Never made anywhere: the create did not happen.
        missing = pending(services, "iam:CreateRole", "reconciled-never", staging)
        # An account RoleDesk does not manage: nothing can be checked.
        stranger = pending(services, "iam:DeleteRole", "reconciled-kept", "999999999999")

        # As at start-up (reconcile_at_start), on a sandbox whose state is still there.
        settled = {s.seq: s.verdict for s in reconciler_for(services, fresh_sandbox=False).run()}

        assert settled[delete] is not None and settled[delete].outcome == "failed"
        assert settled[create] is not None and settled[create].outcome == "succeeded"
        assert settled[missing] is not None and settled[missing].outcome == "failed"
        assert settled[stranger] is not None and settled[stranger].outcome == "unknown"
        assert "999999999999" in settled[stranger].note


def test_without_member_gateways_a_member_call_is_judged_in_the_hub(
    org: Services, members: list[str], tmp_path: Path
):
    """The defect this guards against, shown on the old wiring: asked in the hub, a member
    account's role is not found, so its pending delete reads as done."""
    staging = members[1]
    with own_database(org, tmp_path) as services:
        hub = AccountHub(services.settings, services.clients, services.identity.account)
        with audit_guard("iam:CreateRole"):
            hub.iam(account(hub, staging), "alice").create_role(
                name="reconciled-hub-view", trust_policy=TRUST
            )
        seq = pending(services, "iam:DeleteRole", "reconciled-hub-view", staging)
        hub_only = Reconciler(services.db, services.audit_log, services.iam, services.ec2)
        intent = next(e for e in hub_only.pending() if e.seq == seq)
        assert hub_only.judge(intent).outcome == "succeeded"  # wrong, and why members matter
        assert reconciler_for(services, fresh_sandbox=False).judge(intent).outcome == "failed"


def test_a_lost_answer_in_a_member_account_is_checked_there_at_once(
    org: Services, members: list[str], tmp_path: Path
):
    """A member account's CreateRole whose answer was lost after it took effect: the audited
    path of that account's services writes `unknown`, and the hub's reconciler checks the
    call in that account (in the hub, the role would be "not found": failed)."""
    staging = members[1]
    with own_database(org, tmp_path) as services:
        hub = AccountHub(services.settings, services.clients, services.identity.account)
        member = member_services(services, hub, account(hub, staging))
        events = member.clients.client("iam").meta.events

        def lose_answer(**_: object) -> None:
            raise ReadTimeoutError(endpoint_url="http://sandbox.invalid/")

        ctx = AuditContext(actor="alice")
        events.register_first("after-call.iam.CreateRole", lose_answer)
        try:
            with pytest.raises(TookEffect):
                member.audited.call(
                    ctx,
                    Change("member-lost"),
                    member.iam.create_role,
                    name="member-lost",
                    trust_policy=TRUST,
                )
        finally:
            events.unregister("after-call.iam.CreateRole", lose_answer)

        with services.db.sessions() as session:
            entries = session.execute(
                select(AuditEvent.kind, AuditEvent.outcome, AuditEvent.actor, AuditEvent.account_id)
                .where(AuditEvent.operation_id == ctx.operation_id)
                .order_by(AuditEvent.seq)
            ).all()
        assert [tuple(e) for e in entries] == [
            ("intent", "pending", "alice", staging),
            ("outcome", "unknown", "alice", staging),
            ("outcome", "succeeded", RECONCILER, staging),
        ]
