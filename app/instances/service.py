"""Attach, replace or detach the role of EC2 instances, one or many at once.

What to do with each instance is decided from DescribeIamInstanceProfileAssociations (never
from DescribeInstances, which moto leaves stale after a Replace: aws-iam-behaviour.md B1):

- no live association: AssociateIamInstanceProfile;
- an association on a running instance: ReplaceIamInstanceProfileAssociation;
- an association on a stopped instance: Replace needs a running instance, so
  DisassociateIamInstanceProfile, then AssociateIamInstanceProfile;
- detach: DisassociateIamInstanceProfile.

The change is a plan run by the operations engine (app.operations): every call goes through
the audited path with the instance ARN as target and the profile being replaced or removed as
`before`; one AuditContext (one operation id) covers a bulk action. A new instance profile
is not usable by EC2 at once ("Invalid IAM Instance Profile", A3), so those errors are
retried with backoff for up to two minutes, as Terraform does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.audit.audited import AuditContext
from app.aws.errors import AwsError, Conflict, InvalidInput, Throttled
from app.instances.catalog import RoleChoice
from app.instances.listing import InstanceRow, instance_arn
from app.operations.engine import DONE, UNDONE, Engine
from app.operations.engine import RunResult as EngineResult
from app.operations.plan import Plan as EnginePlan
from app.operations.plan import Step, Undo
from app.operations.retry import RetryPolicy
from app.services import Services

__all__ = ["RetryPolicy"]  # re-exported: callers and tests give the bulk run its backoff

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


def is_throttled(exc: AwsError) -> bool:
    """AWS refused the request rate (Throttling, RequestLimitExceeded) even after botocore's
    own retries (standard mode, 5 attempts): instances changed side by side back off and try
    again rather than fail."""
    return isinstance(exc, Throttled)


def _either(*tests: Callable[[AwsError], bool]) -> Callable[[AwsError], bool]:
    return lambda exc: any(test(exc) for test in tests)


RETRY_ATTACH = _either(is_propagation_error, is_throttled)
RETRY_AFTER_DETACH = _either(is_propagation_error, is_lingering_association, is_throttled)
RETRY_RESTORE = _either(is_lingering_association, is_throttled)


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


def engine_plan(services: Services, plan: Plan) -> EnginePlan:
    """The bulk change as an engine plan: the instance profile's steps first (when the role
    has none yet), then one unit per instance, so one instance's failure never touches
    another. A stopped instance's detach is undone (the old role attached again) when the
    attach that follows it fails."""
    iam, account = services.iam, services.identity.account
    steps: list[Step] = []
    profile_steps: tuple[str, ...] = ()
    profile_arn = ""
    if plan.action == ATTACH and plan.changing and plan.choice is not None:
        if plan.choice.profile is not None:
            profile_arn = plan.choice.profile.arn
        else:
            name = plan.choice.role_name
            target = f"arn:aws:iam::{account}:instance-profile/{name}"
            profile_arn = target
            steps += [
                Step(
                    "profile:create",
                    f"Create instance profile {name}",
                    target,
                    iam.create_instance_profile,
                    {"name": name},
                    unit="profile",
                ),
                Step(
                    "profile:add",
                    f"Add role {name} to instance profile {name}",
                    target,
                    iam.add_role_to_instance_profile,
                    {"profile_name": name, "role_name": name},
                    ("profile:create",),
                    unit="profile",
                ),
            ]
            profile_steps = ("profile:create", "profile:add")
    ec2 = services.ec2(plan.region)
    for item in plan.changing:
        steps += _instance_steps(ec2, account, plan.region, item, profile_arn, profile_steps)
    return EnginePlan(
        "instance-roles",
        f"{STEP_WORDS.get(plan.action, plan.action)} role on {len(plan.changing)} instances",
        tuple(steps),
        details=plan.record(),
        start_action="roledesk:StartInstanceRoleChange",
        finish_action="roledesk:FinishInstanceRoleChange",
    )


def _instance_steps(
    ec2: Any,
    account: str,
    region: str,
    item: InstancePlan,
    profile_arn: str,
    after: tuple[str, ...],
) -> list[Step]:
    iid = item.instance_id
    target = instance_arn(region, account, iid)
    association_id = (item.before or {}).get("association_id", "")
    old_arn = (item.before or {}).get("profile_arn", "")

    def step(key: str, label: str, call: Any, kwargs: dict[str, Any], **more: Any) -> Step:
        return Step(key, label, target, call, kwargs, unit=iid, region=region, **more)

    if item.step == DISASSOCIATE:
        return [
            step(
                f"detach:{iid}",
                f"Detach the role of {iid}",
                ec2.disassociate_profile,
                {"association_id": association_id},
                before=item.before,
                retry=is_throttled,
            )
        ]
    if item.step == REPLACE:
        return [
            step(
                f"replace:{iid}",
                f"Replace the role of {iid}",
                ec2.replace_profile,
                {"association_id": association_id, "profile_arn": profile_arn},
                depends_on=after,
                before=item.before,
                retry=RETRY_ATTACH,
            )
        ]
    attach = {"instance_id": iid, "profile_arn": profile_arn}
    if item.step == ASSOCIATE:
        return [
            step(
                f"attach:{iid}",
                f"Attach the role to {iid}",
                ec2.associate_profile,
                attach,
                depends_on=after,
                before=item.before,
                retry=RETRY_ATTACH,
            )
        ]
    restore = Undo(
        f"Attach the previous role of {iid} again",
        ec2.associate_profile,
        {"instance_id": iid, "profile_arn": old_arn},
        retry=RETRY_RESTORE,
    )
    return [
        step(
            f"detach:{iid}",
            f"Detach the old role of {iid}",
            ec2.disassociate_profile,
            {"association_id": association_id},
            depends_on=after,
            before=item.before,
            undo=restore,
            retry=is_throttled,
        ),
        step(
            f"attach:{iid}",
            f"Attach the role to {iid}",
            ec2.associate_profile,
            attach,
            depends_on=(*after, f"detach:{iid}"),
            retry=RETRY_AFTER_DETACH,
        ),
    ]


def run_result(plan: Plan, result: EngineResult) -> RunResult:
    """The engine's step results as per-instance outcomes."""
    out = RunResult()
    steps = result.steps
    for key in ("profile:create", "profile:add"):
        if key in steps and steps[key].error is not None:
            out.profile_error = steps[key].error
    for item in plan.instances:
        iid = item.instance_id
        if not item.will_change:
            out.outcomes.append(InstanceOutcome(iid, False, reason=item.reason))
            continue
        final = steps.get(
            f"{ {DISASSOCIATE: 'detach', REPLACE: 'replace'}.get(item.step or '', 'attach') }:{iid}"
        )
        detach = steps.get(f"detach:{iid}")
        if final is not None and final.status == DONE:
            out.outcomes.append(InstanceOutcome(iid, True))
        elif final is not None and final.error is not None:
            if item.step == REASSOCIATE and detach is not None:
                if detach.status == UNDONE:
                    out.outcomes.append(
                        InstanceOutcome(
                            iid, False, error=final.error, reason="previous role restored"
                        )
                    )
                else:
                    out.outcomes.append(InstanceOutcome(iid, False, partly=True, error=final.error))
            else:
                out.outcomes.append(InstanceOutcome(iid, False, error=final.error))
        else:
            error = (detach.error if detach is not None else None) or out.profile_error
            out.outcomes.append(InstanceOutcome(iid, False, error=error))
    return out


class RoleChanger:
    """Carries out a Plan through the operations engine."""

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

    def run(self, plan: Plan, *, record_start: bool = False) -> RunResult:
        operation = engine_plan(self._services, plan)
        # Instances side by side, a bounded number at a time (ROLEDESK_EC2_BULK_CONCURRENCY):
        # each instance is a unit of its own, so one's failure or undo never touches another.
        engine = Engine(
            self._services,
            retry=self._retry,
            workers=self._services.settings.ec2_bulk_concurrency,
        )
        if record_start:
            engine.record_start(self._ctx, operation)

        def summary(result: EngineResult) -> dict[str, Any]:
            out = run_result(plan, result)
            return {"changed": out.changed, "unchanged": out.unchanged, "partly": out.partly}

        result = engine.run(self._ctx, operation, summary=summary)
        added = result.steps.get("profile:add")
        if added is not None and added.status == DONE and self._on_profile_created:
            self._on_profile_created()
        return run_result(plan, result)
