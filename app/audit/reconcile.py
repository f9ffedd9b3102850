"""Start-up reconciliation: settle intents left pending by a crash by asking AWS (and those
whose answer was lost while AWS could not be asked).

A pending intent means RoleDesk stopped between writing the intent and writing the outcome:
the AWS call may or may not have happened. For each one, a read call checks the resource the
call would have changed (CreateRole -> GetRole, AttachRolePolicy -> ListAttachedRolePolicies,
EC2 association calls -> DescribeIamInstanceProfileAssociations, ...) and an `outcome` entry is
appended: succeeded, failed, or unknown when AWS cannot tell us (with a note saying why).
Nothing is dropped. If AWS cannot be reached, the intent stays pending for the next start.

Another process may still be working on a recent intent (several servers on one database);
its own outcome entry, appended later, is then the event's latest outcome and wins.

The same check settles, at once, a call whose answer was lost (a read timeout, a connection
closed mid-answer, an unreadable answer, or a botocore retry answered "already exists"): the
audited path writes its outcome `unknown`, then `lost_answer_settler` appends the verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import aliased

from app.accounts.hub import AccountHub
from app.audit.log import AuditLog, NewEntry
from app.aws.ec2 import Ec2Gateway
from app.aws.errors import AwsError, CredentialsProblem, NotFound, Throttled, Unreachable
from app.aws.iam import IamGateway
from app.db import Database
from app.models import AuditEvent, AuditEventStatus

log = logging.getLogger(__name__)

RECONCILER = "roledesk-reconcile"
# AWS creation times and ours come from different clocks.
CLOCK_SKEW = timedelta(minutes=2)
TRANSIENT = (Unreachable, Throttled, CredentialsProblem)


@dataclass(frozen=True)
class Verdict:
    outcome: str  # succeeded, failed or unknown
    note: str
    checked_with: str | None = None


@dataclass(frozen=True)
class Settled:
    seq: int
    action: str
    target: str | None
    verdict: Verdict | None  # None: left pending (AWS unreachable)


def _param(entry: AuditEvent, *names: str) -> str | None:
    params = entry.params or {}
    for name in names:
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _role_name(entry: AuditEvent) -> str | None:
    found = _param(entry, "role_name", "RoleName")
    if found:
        return found
    target = entry.target or ""
    if ":role/" in target:
        return target.rsplit("/", 1)[-1]
    if target and ":" not in target and "/" not in target:
        return target
    return None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _created_verdict(kind: str, name: str, created: datetime | None, since: datetime) -> Verdict:
    if created is None or _aware(created) >= _aware(since) - CLOCK_SKEW:
        return Verdict("succeeded", f"{kind} {name} exists, created after the intent.")
    return Verdict(
        "unknown",
        f"{kind} {name} exists but was created at {created:%Y-%m-%d %H:%M:%S} UTC, before this "
        "call: it may have failed as already existing.",
    )


# A member account's gateways (IAM, and EC2 by region), or None when RoleDesk no longer
# manages that account; raises AwsError when the accounts or the spoke role cannot be reached.
MemberGateways = Callable[[str], tuple[IamGateway, Callable[[str | None], Ec2Gateway]] | None]


class Reconciler:
    def __init__(
        self,
        db: Database,
        audit_log: AuditLog,
        iam: IamGateway,
        ec2_for: Callable[[str | None], Ec2Gateway],
        *,
        fresh_sandbox: bool = False,
        hub_account: str | None = None,
        members: MemberGateways | None = None,
    ) -> None:
        self._fresh_sandbox = fresh_sandbox
        # A call made in a member account is checked there, through its spoke role: asked in
        # the hub instead, a delete's "not found" would be taken for success.
        self._hub_account = hub_account
        self._members = members
        self._member_reconcilers: dict[str, Reconciler] = {}
        self._db = db
        self._log = audit_log
        self._iam = iam
        self._ec2_for = ec2_for
        self._judges: dict[str, Callable[[AuditEvent], Verdict]] = {
            "iam:CreateRole": self._create_role,
            "iam:DeleteRole": self._delete_role,
            "iam:AttachRolePolicy": lambda e: self._attached(e, expect=True),
            "iam:DetachRolePolicy": lambda e: self._attached(e, expect=False),
            "iam:PutRolePolicy": self._put_role_policy,
            "iam:DeleteRolePolicy": self._delete_role_policy,
            "iam:CreateInstanceProfile": self._create_profile,
            "iam:DeleteInstanceProfile": self._delete_profile,
            "iam:AddRoleToInstanceProfile": lambda e: self._in_profile(e, expect=True),
            "iam:RemoveRoleFromInstanceProfile": lambda e: self._in_profile(e, expect=False),
            "iam:CreatePolicy": self._create_policy,
            "iam:DeletePolicy": self._delete_policy,
            "iam:UpdateAssumeRolePolicy": self._trust_updated,
            "iam:UpdateRole": self._role_updated,
            "iam:PutRolePermissionsBoundary": lambda e: self._boundary(e, expect=True),
            "iam:DeleteRolePermissionsBoundary": lambda e: self._boundary(e, expect=False),
            "iam:TagRole": self._tagged,
            "iam:UntagRole": self._untagged,
            "ec2:AssociateIamInstanceProfile": self._associated,
            "ec2:ReplaceIamInstanceProfileAssociation": self._associated,
            "ec2:DisassociateIamInstanceProfile": self._disassociated,
        }

    def pending(self) -> list[AuditEvent]:
        """Intents to check in AWS, oldest first: those still pending, and those whose answer
        was lost and whose check could not be made then (their latest outcome is the audited
        path's `unknown`, not a verdict of the reconciler's). An `unknown` the reconciler
        itself wrote (AWS cannot tell) is not asked again at every start."""
        latest = aliased(AuditEvent)
        with self._db.sessions() as session:
            return list(
                session.scalars(
                    select(AuditEvent)
                    .join(AuditEventStatus, AuditEventStatus.seq == AuditEvent.seq)
                    .outerjoin(latest, latest.seq == AuditEventStatus.outcome_seq)
                    .where(
                        AuditEvent.kind == "intent",
                        or_(
                            AuditEventStatus.outcome == "pending",
                            and_(
                                AuditEventStatus.outcome == "unknown",
                                latest.actor != RECONCILER,
                            ),
                        ),
                    )
                    .order_by(AuditEvent.seq)
                )
            )

    def run(self) -> list[Settled]:
        return [self.settle(intent) for intent in self.pending()]

    def settle(self, intent: AuditEvent) -> Settled:
        try:
            verdict = self.judge(intent)
        except TRANSIENT as exc:
            log.warning("left audit event %s pending: %s", intent.seq, exc.plain)
            return Settled(intent.seq, intent.action, intent.target, None)
        self._log.append(
            NewEntry(
                kind="outcome",
                event_id=intent.event_id,
                action=intent.action,
                actor=RECONCILER,
                outcome=verdict.outcome,
                operation_id=intent.operation_id,
                account_id=intent.account_id,
                region=intent.region,
                target=intent.target,
                params={
                    "reconciliation": verdict.note,
                    "checked_with": verdict.checked_with,
                    "intent_seq": intent.seq,
                },
            )
        )
        return Settled(intent.seq, intent.action, intent.target, verdict)

    def judge(self, intent: AuditEvent) -> Verdict:
        if self._fresh_sandbox:
            return Verdict(
                "unknown",
                "Recorded against an earlier run of the sandbox, whose state is gone: "
                "there is nothing left to ask.",
            )
        if intent.account_id and self._hub_account and intent.account_id != self._hub_account:
            try:
                member = self._member(intent.account_id)
            except TRANSIENT:
                raise
            except AwsError as exc:
                return Verdict(
                    "unknown",
                    f"Account {intent.account_id} could not be reached to check the call: "
                    f"{exc.code}: {exc.message or exc.plain}",
                )
            if member is None:
                return Verdict(
                    "unknown",
                    f"The call was made in account {intent.account_id}, which RoleDesk does "
                    "not manage now: there is no way to check it from here.",
                )
            return member.judge(intent)
        judge = self._judges.get(intent.action)
        if judge is None:
            return Verdict("unknown", f"RoleDesk has no way to check {intent.action} afterwards.")
        try:
            return judge(intent)
        except _Unidentified as exc:
            return Verdict("unknown", f"Cannot tell which resource the call changed: {exc}.")
        except TRANSIENT:
            raise
        except AwsError as exc:
            return Verdict("unknown", f"Checking failed: {exc.code}: {exc.message or exc.plain}")

    def _member(self, account_id: str) -> Reconciler | None:
        """The reconciler that checks calls made in a member account (None: not managed, or
        no way to reach members). AWS errors reaching it propagate: transient ones leave the
        intent pending, the others settle it as unknown with the reason (`judge`)."""
        if account_id in self._member_reconcilers:
            return self._member_reconcilers[account_id]
        gateways = self._members(account_id) if self._members is not None else None
        if gateways is None:
            return None
        member = Reconciler(self._db, self._log, *gateways)
        self._member_reconcilers[account_id] = member
        return member

    # IAM ---------------------------------------------------------------------------------

    def _need(self, value: str | None, what: str) -> str:
        if not value:
            raise _Unidentified(f"no {what} recorded")
        return value

    def _create_role(self, e: AuditEvent) -> Verdict:
        name = self._need(_param(e, "name", "RoleName") or _role_name(e), "role name")
        try:
            role = self._iam.get_role(name)
        except NotFound:
            return Verdict("failed", f"No role named {name} exists.", "iam:GetRole")
        verdict = _created_verdict("Role", name, role.created, e.recorded_at)
        return Verdict(verdict.outcome, verdict.note, "iam:GetRole")

    def _delete_role(self, e: AuditEvent) -> Verdict:
        name = self._need(_param(e, "name", "RoleName") or _role_name(e), "role name")
        try:
            self._iam.get_role(name)
        except NotFound:
            return Verdict("succeeded", f"Role {name} no longer exists.", "iam:GetRole")
        return Verdict("failed", f"Role {name} still exists.", "iam:GetRole")

    def _attached(self, e: AuditEvent, *, expect: bool) -> Verdict:
        role = self._need(_role_name(e), "role name")
        arn = self._need(_param(e, "policy_arn", "PolicyArn"), "policy ARN")
        try:
            arns = {p.arn for p in self._iam.list_attached_role_policies(role)}
        except NotFound:
            return Verdict("failed" if expect else "unknown", f"Role {role} does not exist.")
        done = (arn in arns) == expect
        state = "attached to" if arn in arns else "not attached to"
        return Verdict(
            "succeeded" if done else "failed",
            f"{arn} is {state} {role}.",
            "iam:ListAttachedRolePolicies",
        )

    def _put_role_policy(self, e: AuditEvent) -> Verdict:
        role = self._need(_role_name(e), "role name")
        policy = self._need(_param(e, "policy_name", "PolicyName"), "policy name")
        try:
            found = self._iam.get_role_policy(role, policy)
        except NotFound:
            return Verdict("failed", f"{role} has no inline policy {policy}.", "iam:GetRolePolicy")
        wanted = (e.params or {}).get("document")
        if wanted is None or found.document == wanted:
            return Verdict("succeeded", f"{role} has inline policy {policy}.", "iam:GetRolePolicy")
        return Verdict(
            "unknown",
            f"{role} has an inline policy {policy}, but not with the requested document.",
            "iam:GetRolePolicy",
        )

    def _delete_role_policy(self, e: AuditEvent) -> Verdict:
        role = self._need(_role_name(e), "role name")
        policy = self._need(_param(e, "policy_name", "PolicyName"), "policy name")
        try:
            self._iam.get_role_policy(role, policy)
        except NotFound:
            return Verdict(
                "succeeded", f"{role} has no inline policy {policy}.", "iam:GetRolePolicy"
            )
        return Verdict("failed", f"{role} still has inline policy {policy}.", "iam:GetRolePolicy")

    def _role_now(self, e: AuditEvent) -> Any:
        name = self._need(_role_name(e), "role name")
        return self._iam.get_role(name)

    def _trust_updated(self, e: AuditEvent) -> Verdict:
        role = self._role_now(e)
        wanted = (e.params or {}).get("document")
        same = wanted is not None and role.trust_policy == wanted
        return Verdict(
            "succeeded" if same else "unknown",
            f"The trust policy of {role.name} {'is' if same else 'is not'} the requested one.",
            "iam:GetRole",
        )

    def _role_updated(self, e: AuditEvent) -> Verdict:
        role, params = self._role_now(e), e.params or {}
        same = role.description == params.get("description") and role.max_session_duration == (
            params.get("max_session_duration")
        )
        return Verdict(
            "succeeded" if same else "unknown",
            f"{role.name} {'has' if same else 'does not have'} the requested settings.",
            "iam:GetRole",
        )

    def _boundary(self, e: AuditEvent, *, expect: bool) -> Verdict:
        role = self._role_now(e)
        wanted = _param(e, "policy_arn")
        done = (
            role.permissions_boundary_arn == wanted if expect else not role.permissions_boundary_arn
        )
        return Verdict(
            "succeeded" if done else "failed",
            f"The boundary of {role.name} is {role.permissions_boundary_arn or 'not set'}.",
            "iam:GetRole",
        )

    def _tagged(self, e: AuditEvent) -> Verdict:
        role = self._role_now(e)
        now = {t.key: t.value for t in role.tags}
        wanted = [t for t in (e.params or {}).get("tags") or [] if isinstance(t, dict)]
        done = all(now.get(str(t.get("key"))) == t.get("value") for t in wanted)
        return Verdict(
            "succeeded" if done else "failed",
            f"{role.name} {'has' if done else 'does not have'} the requested tags.",
            "iam:GetRole",
        )

    def _untagged(self, e: AuditEvent) -> Verdict:
        role = self._role_now(e)
        keys = {str(k) for k in (e.params or {}).get("keys") or []}
        left = keys & {t.key for t in role.tags}
        return Verdict(
            "failed" if left else "succeeded",
            f"{role.name} {'still has' if left else 'no longer has'} the tags {sorted(keys)}.",
            "iam:GetRole",
        )

    def _profile_name(self, e: AuditEvent) -> str:
        found = _param(e, "profile_name", "InstanceProfileName", "name")
        if not found and e.target and ":instance-profile/" in e.target:
            found = e.target.rsplit("/", 1)[-1]
        return self._need(found, "instance profile name")

    def _create_profile(self, e: AuditEvent) -> Verdict:
        name = self._profile_name(e)
        try:
            profile = self._iam.get_instance_profile(name)
        except NotFound:
            return Verdict(
                "failed", f"No instance profile {name} exists.", "iam:GetInstanceProfile"
            )
        verdict = _created_verdict("Instance profile", name, profile.created, e.recorded_at)
        return Verdict(verdict.outcome, verdict.note, "iam:GetInstanceProfile")

    def _delete_profile(self, e: AuditEvent) -> Verdict:
        name = self._profile_name(e)
        try:
            self._iam.get_instance_profile(name)
        except NotFound:
            return Verdict(
                "succeeded", f"Instance profile {name} is gone.", "iam:GetInstanceProfile"
            )
        return Verdict("failed", f"Instance profile {name} still exists.", "iam:GetInstanceProfile")

    def _in_profile(self, e: AuditEvent, *, expect: bool) -> Verdict:
        name = self._profile_name(e)
        role = self._need(_param(e, "role_name", "RoleName") or _role_name(e), "role name")
        try:
            profile = self._iam.get_instance_profile(name)
        except NotFound:
            return Verdict("failed" if expect else "unknown", f"No instance profile {name}.")
        present = role in profile.role_names
        return Verdict(
            "succeeded" if present == expect else "failed",
            f"Role {role} is {'in' if present else 'not in'} instance profile {name}.",
            "iam:GetInstanceProfile",
        )

    def _policy_arn(self, e: AuditEvent) -> str:
        found = e.target if e.target and ":policy/" in e.target else _param(e, "arn")
        return self._need(found, "policy ARN")

    def _create_policy(self, e: AuditEvent) -> Verdict:
        arn = self._policy_arn(e)
        try:
            policy = self._iam.get_policy(arn)
        except NotFound:
            return Verdict("failed", f"No policy {arn} exists.", "iam:GetPolicy")
        verdict = _created_verdict("Policy", arn, policy.created, e.recorded_at)
        return Verdict(verdict.outcome, verdict.note, "iam:GetPolicy")

    def _delete_policy(self, e: AuditEvent) -> Verdict:
        arn = self._policy_arn(e)
        try:
            self._iam.get_policy(arn)
        except NotFound:
            return Verdict("succeeded", f"Policy {arn} no longer exists.", "iam:GetPolicy")
        return Verdict("failed", f"Policy {arn} still exists.", "iam:GetPolicy")

    # EC2 ---------------------------------------------------------------------------------

    def _instance_id(self, e: AuditEvent) -> str | None:
        found = _param(e, "instance_id", "InstanceId")
        if not found and e.target and e.target.startswith("i-"):
            found = e.target
        if not found and e.target and ":instance/" in e.target:
            found = e.target.rsplit("/", 1)[-1]
        return found

    def _associated(self, e: AuditEvent) -> Verdict:
        profile = self._need(_param(e, "profile_arn", "IamInstanceProfileArn"), "profile ARN")
        ec2 = self._ec2_for(e.region)
        instance = self._instance_id(e)
        associations = ec2.list_associations([instance] if instance else None)
        if instance is None:  # Replace records only the association: find it by its id
            old = _param(e, "association_id", "AssociationId")
            self._need(old, "instance or association id")
            instance = next((a.instance_id for a in associations if a.association_id == old), None)
            self._need(instance, "instance whose association is still listed")
        live = [
            a
            for a in associations
            if a.instance_id == instance and a.state in ("associating", "associated")
        ]
        done = any(a.profile_arn == profile for a in live)
        return Verdict(
            "succeeded" if done else "failed",
            f"{instance} {'has' if done else 'does not have'} {profile} associated.",
            "ec2:DescribeIamInstanceProfileAssociations",
        )

    def _disassociated(self, e: AuditEvent) -> Verdict:
        association = self._need(_param(e, "association_id", "AssociationId"), "association id")
        instance = self._instance_id(e)
        associations = self._ec2_for(e.region).list_associations([instance] if instance else None)
        still = any(
            a.association_id == association and a.state in ("associating", "associated")
            for a in associations
        )
        return Verdict(
            "failed" if still else "succeeded",
            f"Association {association} is {'still' if still else 'no longer'} in place.",
            "ec2:DescribeIamInstanceProfileAssociations",
        )


class _Unidentified(Exception):
    """The intent does not say which resource it was about."""


def member_gateways(services: Any) -> MemberGateways:
    """Member accounts' gateways through the hub (app.accounts.hub), session named after the
    reconciler so the member account's CloudTrail shows who checked."""
    hub = AccountHub(services.settings, services.clients, services.identity.account)
    listed: list[Any] = []

    def gateways(account_id: str) -> tuple[IamGateway, Callable[[str | None], Ec2Gateway]] | None:
        if not listed:
            listed.append(hub.accounts())  # once per reconciliation
        account = listed[0].find(account_id)
        if account is None:
            return None
        return hub.iam(account, RECONCILER), lambda region: hub.ec2(account, RECONCILER, region)

    return gateways


def reconciler_for(services: Any, *, fresh_sandbox: bool) -> Reconciler:
    """The hub account's reconciler, which hands calls made in member accounts to theirs."""
    return Reconciler(
        services.db,
        services.audit_log,
        services.iam,
        services.ec2,
        fresh_sandbox=fresh_sandbox,
        hub_account=services.identity.account,
        members=member_gateways(services),
    )


def lost_answer_settler(services: Any) -> Callable[[NewEntry], Verdict | None]:
    """For AuditedAws.settle_lost: check a committed intent whose answer was lost and append
    the verdict (actor roledesk-reconcile). None when AWS could not be asked now (the event
    stays `unknown`).

    `services` is the hub's: its reconciler checks a member account's call in that account.
    A reconciler is built per check, so the member accounts' list is read fresh (lost answers
    are rare). The sandbox is never taken as fresh here: the state checked is the live one."""

    def settle(intent: NewEntry) -> Verdict | None:
        with services.db.sessions() as session:
            row = session.scalars(
                select(AuditEvent).where(
                    AuditEvent.event_id == intent.event_id, AuditEvent.kind == "intent"
                )
            ).first()
        if row is None:
            return None
        return reconciler_for(services, fresh_sandbox=False).settle(row).verdict

    return settle


def reconcile_at_start(services: Any) -> list[Settled]:
    """Settle pending intents with the running services; never stops the start-up."""
    # The embedded sandbox starts empty: intents left from an earlier run cannot be checked.
    reconciler = reconciler_for(services, fresh_sandbox=services.sandbox_endpoint is not None)
    try:
        settled = reconciler.run()
    except Exception:
        log.exception("start-up reconciliation of the audit log failed; intents stay pending")
        return []
    for item in settled:
        if item.verdict is None:
            print(f"Audit event {item.seq} ({item.action}) left pending: AWS unreachable")
        else:
            print(
                f"Audit event {item.seq} ({item.action} on {item.target}) settled as "
                f"{item.verdict.outcome}: {item.verdict.note}"
            )
    return settled
