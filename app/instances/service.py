"""Attach, replace or detach the role of EC2 instances, one or many at once.

What to do with each instance is decided from DescribeIamInstanceProfileAssociations (never
from DescribeInstances, which moto leaves stale after a Replace: aws-iam-behaviour.md B1):

- no live association: AssociateIamInstanceProfile;
- an association on a running instance: ReplaceIamInstanceProfileAssociation;
- an association on a stopped instance: Replace needs a running instance, so
  DisassociateIamInstanceProfile, then AssociateIamInstanceProfile;
- detach: DisassociateIamInstanceProfile.

Every call goes through the audited path with the instance ARN as target and the profile
being replaced or removed as `before`; one AuditContext (one operation id) covers a bulk
action. A new instance profile is not usable by EC2 at once ("Invalid IAM Instance Profile",
A3), so those errors are retried with backoff for up to two minutes, as Terraform does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.audit.audited import AuditContext, Change
from app.aws.errors import AwsError, Conflict, InvalidInput
from app.aws.types import InstanceProfile
from app.instances.catalog import RoleChoice
from app.instances.listing import InstanceRow, instance_arn
from app.services import Services

R = TypeVar("R")

ATTACH = "attach"
DETACH = "detach"
MAX_INSTANCES = 50

ASSOCIATE = "associate"
REPLACE = "replace"
REASSOCIATE = "reassociate"  # stopped instance with a role: disassociate, then associate
DISASSOCIATE = "disassociate"

STEP_WORDS = {
    ASSOCIATE: "Attach",
    REPLACE: "Replace",
    REASSOCIATE: "Detach the old role, then attach (the instance is stopped)",
    DISASSOCIATE: "Detach",
}


@dataclass(frozen=True)
class InstancePlan:
    """What will happen to one instance; `step` None means nothing, for `reason`."""

    instance_id: str
    name: str = ""
    state: str = "unknown"
    step: str | None = None
    reason: str = ""
    before: dict[str, Any] | None = None  # the live association being replaced or removed

    @property
    def will_change(self) -> bool:
        return self.step is not None


@dataclass(frozen=True)
class Plan:
    action: str
    region: str
    instances: tuple[InstancePlan, ...]
    choice: RoleChoice | None = None

    @property
    def role_name(self) -> str | None:
        return self.choice.role_name if self.choice else None

    @property
    def profile_name(self) -> str | None:
        if self.choice is None:
            return None
        return self.choice.profile.name if self.choice.profile else self.choice.role_name

    @property
    def changing(self) -> list[InstancePlan]:
        return [i for i in self.instances if i.will_change]

    @property
    def replacing(self) -> list[InstancePlan]:
        return [i for i in self.instances if i.step in (REPLACE, REASSOCIATE)]

    def record(self) -> dict[str, Any]:
        """The plan as JSON for the audit ledger (the status page is rebuilt from it)."""
        return {
            "action": self.action,
            "region": self.region,
            "role": self.role_name,
            "profile": self.profile_name,
            "create_profile": bool(self.choice and self.choice.needs_profile),
            "instances": [
                {
                    "id": i.instance_id,
                    "name": i.name,
                    "state": i.state,
                    "step": i.step,
                    "reason": i.reason,
                    "before": i.before,
                }
                for i in self.instances
            ],
        }


def _before(row: InstanceRow) -> dict[str, Any] | None:
    if row.association is None:
        return None
    return {
        "association_id": row.association.association_id,
        "profile_arn": row.association.profile_arn,
        "profile_name": row.profile_name,
        "role": row.role_name,
    }


def _refusal(row: InstanceRow, action: str, choice: RoleChoice | None) -> str:
    """Why nothing can be done to this instance, or '' when something can."""
    state = row.instance.state
    if not row.choosable:
        return f"The instance is {state}; a terminated instance cannot be given a role."
    if state not in ("running", "stopped"):
        return (
            f"The instance is {state}; roles can be changed only on running or stopped instances."
        )
    if row.association is not None and row.association.state == "disassociating":
        return "The instance's role is being detached right now; try again in a moment."
    if action == DETACH:
        return "" if row.association is not None else "The instance has no role to detach."
    if (
        row.association is not None
        and choice is not None
        and choice.profile is not None
        and row.association.profile_arn == choice.profile.arn
    ):
        return f"The instance already carries {choice.role_name}."
    return ""


def _step(row: InstanceRow, action: str) -> str:
    if action == DETACH:
        return DISASSOCIATE
    if row.association is None:
        return ASSOCIATE
    return REPLACE if row.instance.state == "running" else REASSOCIATE


def plan_change(
    region: str,
    action: str,
    instance_ids: list[str],
    rows: list[InstanceRow],
    choice: RoleChoice | None = None,
) -> Plan:
    """Decide per instance from the live rows (fetched for exactly `instance_ids`)."""
    by_id = {r.instance_id: r for r in rows}
    planned = []
    for iid in dict.fromkeys(instance_ids):
        row = by_id.get(iid)
        if row is None:
            planned.append(InstancePlan(iid, reason="No such instance in this region."))
            continue
        reason = _refusal(row, action, choice)
        planned.append(
            InstancePlan(
                iid,
                row.instance.name,
                row.instance.state,
                None if reason else _step(row, action),
                reason,
                _before(row),
            )
        )
    return Plan(action, region, tuple(planned), choice)


# Running a plan ---------------------------------------------------------------------------


def is_propagation_error(exc: AwsError) -> bool:
    """EC2 does not see a new instance profile yet (IAM is eventually consistent)."""
    text = exc.message.lower()
    return isinstance(exc, InvalidInput) and (
        "invalid iam instance profile" in text or "has no associated iam roles" in text
    )


def is_lingering_association(exc: AwsError) -> bool:
    """After a detach, AWS may still hold the old association for a moment."""
    return isinstance(exc, Conflict) and "existing association" in exc.message.lower()


@dataclass
class RetryPolicy:
    """Backoff for errors that time cures; sleep and clock are injectable for tests."""

    budget_seconds: float = 120.0
    first_delay: float = 2.0
    max_delay: float = 15.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def run(self, attempt: Callable[[], R], retryable: Callable[[AwsError], bool]) -> R:
        deadline = self.clock() + self.budget_seconds
        delay = self.first_delay
        while True:
            try:
                return attempt()
            except AwsError as exc:
                if not retryable(exc) or self.clock() + delay > deadline:
                    raise
            self.sleep(delay)
            delay = min(delay * 2, self.max_delay)


@dataclass
class InstanceOutcome:
    instance_id: str
    changed: bool
    partly: bool = False  # the old role was removed but the new one not attached
    error: AwsError | None = None
    reason: str = ""


@dataclass
class RunResult:
    outcomes: list[InstanceOutcome] = field(default_factory=list)
    profile_error: AwsError | None = None

    @property
    def changed(self) -> list[str]:
        return [o.instance_id for o in self.outcomes if o.changed]

    @property
    def unchanged(self) -> list[str]:
        return [o.instance_id for o in self.outcomes if not o.changed and not o.partly]

    @property
    def partly(self) -> list[str]:
        return [o.instance_id for o in self.outcomes if o.partly]


class RoleChanger:
    """Carries out a Plan through the audited path, one instance after another."""

    def __init__(
        self,
        services: Services,
        ctx: AuditContext,
        retry: RetryPolicy | None = None,
        on_profile_created: Callable[[], None] | None = None,
    ) -> None:
        self._services = services
        self._ctx = ctx
        self._retry = retry or RetryPolicy()
        self._on_profile_created = on_profile_created

    def run(self, plan: Plan) -> RunResult:
        result = RunResult()
        profile_arn: str | None = None
        if plan.action == ATTACH and plan.changing:
            assert plan.choice is not None
            try:
                profile_arn = self._profile_arn(plan.choice)
            except AwsError as exc:
                result.profile_error = exc
        for item in plan.instances:
            if not item.will_change:
                result.outcomes.append(InstanceOutcome(item.instance_id, False, reason=item.reason))
            elif plan.action == ATTACH and profile_arn is None:
                result.outcomes.append(
                    InstanceOutcome(item.instance_id, False, error=result.profile_error)
                )
            else:
                result.outcomes.append(self._change(plan.region, item, profile_arn))
        return result

    def _profile_arn(self, choice: RoleChoice) -> str:
        """The chosen profile's ARN, creating a same-named profile first when needed."""
        if choice.profile is not None:
            return choice.profile.arn
        profile = self.create_profile_for(choice.role_name)
        return profile.arn

    def create_profile_for(self, role_name: str) -> InstanceProfile:
        """CreateInstanceProfile named after the role, then AddRoleToInstanceProfile (which
        needs iam:PassRole on the role), both audited, as the console does."""
        iam, audited = self._services.iam, self._services.audited
        account = self._services.identity.account
        target = f"arn:aws:iam::{account}:instance-profile/{role_name}"
        profile = audited.call(
            self._ctx, Change(target), iam.create_instance_profile, name=role_name
        )
        audited.call(
            self._ctx,
            Change(target),
            iam.add_role_to_instance_profile,
            profile_name=role_name,
            role_name=role_name,
        )
        if self._on_profile_created:
            self._on_profile_created()
        return profile

    def _change(self, region: str, item: InstancePlan, profile_arn: str | None) -> InstanceOutcome:
        ec2, call = self._services.ec2(region), self._services.audited.call
        target = instance_arn(region, self._services.identity.account, item.instance_id)
        change = Change(target, before=item.before, region=region)
        association_id = (item.before or {}).get("association_id", "")
        arn = profile_arn or ""  # set whenever the step attaches something
        detached = False
        try:
            if item.step in (DISASSOCIATE, REASSOCIATE):
                call(self._ctx, change, ec2.disassociate_profile, association_id=association_id)
                detached = True
            if item.step == REPLACE:
                self._retry.run(
                    lambda: call(
                        self._ctx,
                        change,
                        ec2.replace_profile,
                        association_id=association_id,
                        profile_arn=arn,
                    ),
                    is_propagation_error,
                )
            elif item.step in (ASSOCIATE, REASSOCIATE):
                after_detach = Change(target, region=region)
                self._retry.run(
                    lambda: call(
                        self._ctx,
                        after_detach if detached else change,
                        ec2.associate_profile,
                        instance_id=item.instance_id,
                        profile_arn=arn,
                    ),
                    lambda e: is_propagation_error(e) or (detached and is_lingering_association(e)),
                )
        except AwsError as exc:
            if detached and item.step == REASSOCIATE:
                return self._restore(region, item, exc)
            return InstanceOutcome(item.instance_id, False, error=exc)
        return InstanceOutcome(item.instance_id, True)

    def _restore(self, region: str, item: InstancePlan, error: AwsError) -> InstanceOutcome:
        """The old role was detached but the new one could not be attached: attach the old
        profile again, so a failed change does not leave the instance without any role."""
        ec2, call = self._services.ec2(region), self._services.audited.call
        target = instance_arn(region, self._services.identity.account, item.instance_id)
        old_arn = (item.before or {}).get("profile_arn", "")
        try:
            self._retry.run(
                lambda: call(
                    self._ctx,
                    Change(target, region=region),
                    ec2.associate_profile,
                    instance_id=item.instance_id,
                    profile_arn=old_arn,
                ),
                is_lingering_association,
            )
        except AwsError:
            return InstanceOutcome(item.instance_id, False, partly=True, error=error)
        return InstanceOutcome(
            item.instance_id, False, error=error, reason="previous role restored"
        )
