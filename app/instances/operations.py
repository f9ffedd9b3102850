"""Bulk role changes run in the background; their progress is read back from the audit ledger.

Starting an operation writes a `record` entry holding the plan (which instances, what will be
done, the roles being replaced), then a thread runs it through the audited path under the
same operation id and finally writes a `record` entry with what changed. The status page
(`/instances/operations/{id}`) rebuilds everything from those ledger entries, so it shows the
truth even after a restart, plus the current association state from AWS while it settles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.audit.audited import AuditContext
from app.instances.explain import explain
from app.instances.listing import SETTLING_ASSOCIATION_STATES, current_associations, instance_arn
from app.instances.service import (
    REASSOCIATE,
    Plan,
    RetryPolicy,
    RoleChanger,
    RunResult,
    engine_plan,
)
from app.models import AuditEvent
from app.operations import progress
from app.operations.background import BackgroundRuns
from app.operations.engine import Engine
from app.services import Services

log = logging.getLogger(__name__)

PLAN_ACTION = "roledesk:StartInstanceRoleChange"
FINISH_ACTION = "roledesk:FinishInstanceRoleChange"
DISASSOCIATE_ACTION = "ec2:DisassociateIamInstanceProfile"
ASSOCIATE_ACTION = "ec2:AssociateIamInstanceProfile"


def _record(services: Services, ctx: AuditContext, action: str, params: dict[str, Any]) -> None:
    services.audit_log.append(
        ctx.record(
            action,
            account_id=services.identity.account,
            region=params.get("region"),
            params=params,
        )
    )


def record_start(
    services: Services, ctx: AuditContext, plan: Plan, review: dict[str, Any] | None = None
) -> None:
    """The plan, as the first ledger entry of the operation (the status page reads it), with
    the attached role's security warnings and their acknowledgements (issue 10)."""
    operation = engine_plan(services, plan)
    if review is not None:
        operation = replace(operation, details={**operation.details, "policy_review": review})
    Engine(services).record_start(ctx, operation)


def run_operation(
    services: Services,
    ctx: AuditContext,
    plan: Plan,
    retry: RetryPolicy | None = None,
    on_profile_created: Callable[[], None] | None = None,
) -> RunResult:
    """Carry out `plan` (its start record already written) with the operations engine, which
    records the summary (or that it stopped)."""
    return RoleChanger(services, ctx, retry, on_profile_created).run(plan)


class OperationRunner:
    """Starts bulk changes in the background (the engine's runs of this process)."""

    def __init__(self, retry: Callable[[], RetryPolicy] = RetryPolicy) -> None:
        self._retry = retry
        self._runs: BackgroundRuns | None = None

    def start(
        self,
        services: Services,
        ctx: AuditContext,
        plan: Plan,
        on_profile_created: Callable[[], None] | None = None,
        review: dict[str, Any] | None = None,
    ) -> str:
        record_start(services, ctx, plan, review)
        self._runs = services.runs
        retry = self._retry()
        services.runs.start(
            ctx.operation_id,
            lambda: run_operation(services, ctx, plan, retry, on_profile_created),
            "instance-roles",
        )
        return ctx.operation_id

    def running(self, operation_id: str) -> bool:
        return self._runs is not None and self._runs.running(operation_id)

    def wait(self, operation_id: str, timeout: float = 30) -> None:
        if self._runs is not None:
            self._runs.wait(operation_id, timeout)


# Status, rebuilt from the ledger ----------------------------------------------------------


@dataclass
class CallRecord:
    action: str
    outcome: str  # pending, succeeded, failed
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class InstanceStatus:
    instance_id: str
    name: str
    step: str | None
    before: dict[str, Any] | None
    result: str  # waiting, working, retrying, changed, partly, unchanged (failed), skipped,
    # unknown (RoleDesk stopped in the middle of a call), not_started (stopped before it)
    detail: str = ""
    calls: list[CallRecord] = field(default_factory=list)
    association_state: str | None = None  # current, from AWS

    @property
    def last_error(self) -> CallRecord | None:
        """The last failure of the change itself (not of putting the old role back)."""
        failed = [c for c in self.calls if c.outcome == "failed" and not self.is_restore(c)]
        return failed[-1] if failed else None

    def is_restore(self, call: CallRecord) -> bool:
        """An Associate of the profile the instance had before (stopped instances only)."""
        return (
            self.step == REASSOCIATE
            and call.action == ASSOCIATE_ACTION
            and bool(self.before)
            and call.params.get("profile_arn") == (self.before or {}).get("profile_arn")
        )


@dataclass
class OperationStatus:
    operation_id: str
    plan: dict[str, Any]
    instances: list[InstanceStatus]
    profile_calls: list[CallRecord]
    finished: bool
    crashed: bool = False

    @property
    def profile_problem(self) -> str:
        """Why the instance profile could not be prepared, in plain words ('' if it could)."""
        failed = [c for c in self.profile_calls if c.outcome == "failed"]
        if not failed:
            return ""
        return explain(
            failed[-1].error_code,
            failed[-1].error_message,
            action=failed[-1].action,
            role_name=self.plan.get("role"),
        )

    @property
    def settling(self) -> bool:
        return any(i.association_state in SETTLING_ASSOCIATION_STATES for i in self.instances)

    @property
    def done(self) -> bool:
        return self.finished and not self.settling

    def having(self, result: str) -> list[InstanceStatus]:
        return [i for i in self.instances if i.result == result]

    @property
    def rest_choice(self) -> str:
        """The role choice that runs the instances not started (the review page's field)."""
        if self.plan.get("action") != "attach" or not self.plan.get("profile"):
            return ""
        return f"profile:{self.plan['profile']}"


def _calls_by_target(entries: list[AuditEvent]) -> dict[str, list[CallRecord]]:
    """Intent + outcome pairs (by event id), in order, grouped by target."""
    calls: dict[str, CallRecord] = {}
    targets: dict[str, list[CallRecord]] = {}
    for e in entries:
        if e.kind == "intent":
            call = CallRecord(e.action, "pending", params=e.params or {})
            calls[e.event_id] = call
            targets.setdefault(e.target or "", []).append(call)
        elif e.kind == "outcome" and e.event_id in calls:
            call = calls[e.event_id]
            call.outcome = e.outcome
            call.error_code, call.error_message = e.error_code, e.error_message
            call.request_id = e.aws_request_id
    return targets


FINAL_ACTION = {
    "associate": ASSOCIATE_ACTION,
    "reassociate": ASSOCIATE_ACTION,
    "replace": "ec2:ReplaceIamInstanceProfileAssociation",
    "disassociate": DISASSOCIATE_ACTION,
}


def _explain_failure(status: InstanceStatus, plan: dict[str, Any]) -> str:
    failed = status.last_error
    if failed is None:
        return ""
    return explain(
        failed.error_code,
        failed.error_message,
        action=failed.action,
        role_name=plan.get("role"),
        instance_id=status.instance_id,
    )


def _settle_result(
    status: InstanceStatus,
    last: CallRecord | None,
    plan: dict[str, Any],
    finished: bool,
    crashed: bool = False,
) -> tuple[str, str]:
    """(result, detail) of an instance that had something to do."""
    if last is None:
        if not finished:
            return "waiting", ""
        if plan.get("create_profile"):
            return "unchanged", "Not attempted: the instance profile could not be prepared."
        if crashed:
            return "not_started", "Not started: RoleDesk stopped before reaching this instance."
        return "unchanged", "Not attempted."
    if last.outcome == "pending":
        if finished:  # the process stopped during the call: only AWS knows what happened
            return "unknown", "RoleDesk stopped during this call; see the association now."
        return "working", ""
    if last.outcome == "succeeded" and status.is_restore(last):
        return "unchanged", (
            f"{_explain_failure(status, plan)} The instance's previous role "
            f"({(status.before or {}).get('role')}) was attached again."
        )
    if last.outcome == "succeeded":
        if last.action == FINAL_ACTION[status.step or ""]:
            return "changed", ""
        if finished:
            return "partly", "RoleDesk stopped after detaching the old role."
        return "working", ""
    if not finished:
        return "retrying", _explain_failure(status, plan)
    detached = status.step == REASSOCIATE and any(
        c.action == DISASSOCIATE_ACTION and c.outcome == "succeeded" for c in status.calls
    )
    return ("partly" if detached else "unchanged"), _explain_failure(status, plan)


def _instance_status(
    item: dict[str, Any],
    calls: list[CallRecord],
    plan: dict[str, Any],
    finished: bool,
    crashed: bool,
) -> InstanceStatus:
    status = InstanceStatus(item["id"], item.get("name", ""), item["step"], item["before"], "")
    status.calls = calls
    if item["step"] is None:
        status.result, status.detail = "skipped", item.get("reason", "")
    else:
        last = calls[-1] if calls else None
        status.result, status.detail = _settle_result(status, last, plan, finished, crashed)
    return status


def operation_entries(services: Services, operation_id: str) -> list[AuditEvent]:
    return progress.entries_of(services.db, operation_id)


# Longer than any quiet spell inside a run (a 15 s propagation back-off, or botocore's own
# retries with 30 s read timeouts), shorter than a person's patience with a dead run.
STILL_RUNNING_WINDOW = timedelta(minutes=5)


def _recently_written(when: datetime) -> bool:
    if when.tzinfo is None:  # SQLite hands back naive UTC times
        when = when.replace(tzinfo=UTC)
    return datetime.now(UTC) - when < STILL_RUNNING_WINDOW


def load_status(services: Services, operation_id: str, running: bool) -> OperationStatus | None:
    """The operation as the ledger tells it, plus live association states; None if the id
    names no instance role change."""
    entries = operation_entries(services, operation_id)
    start = next((e for e in entries if e.action == PLAN_ACTION), None)
    if start is None or start.params is None:
        return None
    plan = start.params
    finish = next((e for e in entries if e.action == FINISH_ACTION), None)
    # With several worker processes the run may be in another process: a run whose ledger
    # entries are still coming in counts as running there.
    running = running or (finish is None and _recently_written(entries[-1].recorded_at))
    crashed = bool(finish and (finish.params or {}).get("crashed")) or (
        finish is None and not running
    )
    finished = finish is not None or not running
    by_target = _calls_by_target(entries)
    account, region = services.identity.account, plan["region"]
    instances = [
        _instance_status(
            item,
            by_target.get(instance_arn(region, account, item["id"]), []),
            plan,
            finished,
            crashed,
        )
        for item in plan["instances"]
    ]
    profile_target = f"arn:aws:iam::{account}:instance-profile/{plan.get('profile')}"
    status = OperationStatus(
        operation_id, plan, instances, by_target.get(profile_target, []), finished, crashed
    )
    ids = [i.instance_id for i in instances if i.step is not None]
    if ids:
        live = current_associations(services.ec2(region).list_associations(ids))
        for i in instances:
            if i.step is not None:
                found = live.get(i.instance_id)
                i.association_state = found.state if found else "none"
    return status
