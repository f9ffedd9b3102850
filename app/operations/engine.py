"""Runs a Plan through the audited path: intent durable before each call, outcome after.

Steps run in dependency order (`Plan.waves`); with `workers` > 1 side by side, each as soon
as the steps it depends on are done and a worker is free, each worker with its own audited
sequence (the ledger's group commit lets their entries share transactions). Each step's
intent carries the step's key, so the progress page (app.operations.progress) rebuilds the
run from the ledger alone.

A failed step follows the plan's rule (app.operations.plan): undo its unit, newest first, or
stop. If the ledger cannot be written (the database failed), the next call is not made: the
run stops, and its undo (audited) is handed to the settle loop (app.operations.settle), which
does it as soon as the database answers again.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.audit.audited import AuditContext, AuditedSequence, Change, LedgerUnavailable, jsonable
from app.aws.errors import AwsError, NotFound
from app.operations.plan import STOP, UNDO, Plan, Step
from app.operations.retry import RetryPolicy

if TYPE_CHECKING:
    from app.services import Services

log = logging.getLogger(__name__)

# Step statuses, as the result and the progress page name them.
WAITING = "waiting"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
UNDONE = "undone"
UNDO_FAILED = "undo_failed"
NOT_STARTED = "not_started"  # never called: an earlier failure, a stop, or a ledger fault


@dataclass
class StepResult:
    key: str
    label: str
    status: str = WAITING
    value: Any = None
    error: AwsError | None = None
    undo_error: AwsError | None = None


@dataclass
class RunResult:
    plan: Plan
    operation_id: str
    steps: dict[str, StepResult]
    ledger_fault: str | None = None  # why the run stopped early: the ledger failed
    settled: bool = True  # False while a ledger-fault undo waits for the database
    undo_errors: list[str] = field(default_factory=list)
    undone_order: list[str] = field(default_factory=list)  # undo labels, as they were done

    def having(self, *statuses: str) -> list[StepResult]:
        return [r for r in self.steps.values() if r.status in statuses]

    @property
    def ok(self) -> bool:
        return self.ledger_fault is None and all(r.status == DONE for r in self.steps.values())

    @property
    def first_error(self) -> tuple[str, AwsError] | None:
        for r in self.steps.values():
            if r.error is not None:
                return r.label, r.error
        return None

    def labels(self, *statuses: str) -> list[str]:
        return [r.label for r in self.having(*statuses)]

    def record(self) -> dict[str, Any]:
        return {
            "steps": {k: r.status for k, r in self.steps.items()},
            "ledger_fault": self.ledger_fault,
            "undo_errors": self.undo_errors,
        }


def step_change(step: Step) -> Change:
    """What the ledger records for a step: its arguments plus the step's key."""
    return Change(
        step.target,
        params={**jsonable(step.kwargs), **(step.note or {}), "step": step.key},
        before=step.before,
        region=step.region,
        after=step.after,
        account_id=step.account,
    )


def undo_change(step: Step) -> Change:
    assert step.undo is not None
    return Change(
        step.target,
        params={**jsonable(step.undo.kwargs), "undo_of": step.key},
        region=step.region,
        account_id=step.account,
    )


Finish = Callable[[RunResult], None]


def _chain_depths(plan: Plan) -> dict[str, int]:
    """For each step, the most steps in a chain that starts with it (itself and what
    depends on it, transitively): a step heading a long chain should start first."""
    dependents: dict[str, list[str]] = {s.key: [] for s in plan.steps}
    for s in plan.steps:
        for d in s.depends_on:
            dependents[d].append(s.key)
    depth: dict[str, int] = {}
    for wave in reversed(plan.waves()):
        for s in wave:
            depth[s.key] = 1 + max((depth[k] for k in dependents[s.key]), default=0)
    return depth


class Engine:
    def __init__(
        self, services: Services, *, retry: RetryPolicy | None = None, workers: int = 1
    ) -> None:
        self.services = services
        self._retry = retry or RetryPolicy()
        self._workers = max(1, workers)
        self._unwritten_lock = threading.Lock()

    # Ledger records around a run --------------------------------------------------------

    def record_start(self, ctx: AuditContext, plan: Plan) -> None:
        """The plan as the operation's first ledger entry (its pages read it back)."""
        self.record(ctx, plan.start_action, plan.record(), plan)

    def record(self, ctx: AuditContext, action: str, params: dict[str, Any], plan: Plan) -> None:
        services = self.services
        services.audit_log.append(
            ctx.record(
                action,
                account_id=services.identity.account,
                region=plan.details.get("region"),
                params={"region": plan.details.get("region"), **params},
            )
        )

    # Running ----------------------------------------------------------------------------

    def run(
        self,
        ctx: AuditContext,
        plan: Plan,
        *,
        summary: Callable[[RunResult], dict[str, Any]] | None = None,
        finish: Finish | None = None,
    ) -> RunResult:
        """Run `plan` (its start record already written), then write the finish record and
        call `finish`. After a ledger fault both wait for the settle loop."""
        result = RunResult(
            plan, ctx.operation_id, {s.key: StepResult(s.key, s.label) for s in plan.steps}
        )
        completed: list[Step] = []
        side_unwritten: list[Any] = []  # outcomes of side-by-side calls not yet written
        try:
            with self.services.audited.sequence(ctx) as calls:
                self._run_waves(ctx, plan, calls, result, completed, side_unwritten)
        except Exception:
            log.exception("operation %s (%s) stopped", ctx.operation_id, plan.kind)
            self._finish_quietly(ctx, plan, {**result.record(), "crashed": True})
            raise
        # The roles list re-reads each changed role off the run's path; the run is not over
        # until those reads are stored, so every process shows the change once it is done.
        self.services.inventory.settle()
        self.services.instances.settle()  # the same for the EC2 instances list
        unwritten = side_unwritten + calls.unwritten
        if result.ledger_fault is None and unwritten:
            result.ledger_fault = "the outcome of the last call could not be written"
        if result.ledger_fault is not None:
            result.settled = False
            self.services.settler.defer(
                SettleRun(self, ctx, plan, result, completed, unwritten, summary, finish)
            )
            return result
        self.close(ctx, plan, result, summary, finish)
        return result

    def close(
        self,
        ctx: AuditContext,
        plan: Plan,
        result: RunResult,
        summary: Callable[[RunResult], dict[str, Any]] | None,
        finish: Finish | None,
    ) -> None:
        """Record the run's end and tell its owner; retried by the settle loop if the
        database fails right then."""
        self.services.settler.defer(CloseRun(self, ctx, plan, result, summary, finish))

    def _finish_quietly(self, ctx: AuditContext, plan: Plan, params: dict[str, Any]) -> None:
        try:
            self.record(ctx, plan.finish_action, params, plan)
        except Exception:
            log.exception("could not record the end of operation %s", ctx.operation_id)

    def _run_waves(
        self,
        ctx: AuditContext,
        plan: Plan,
        calls: AuditedSequence,
        result: RunResult,
        completed: list[Step],
        unwritten: list[Any],
    ) -> None:
        state = _RunState(self, plan, calls, result, completed)
        if self._workers > 1:
            self._side_by_side(ctx, state, unwritten)
        else:
            for wave in plan.waves():
                for s in wave:
                    if state.may_start(s):
                        state.settle(
                            [(s, self._attempt(functools.partial(self._call, calls, s), s, result))]
                        )
        for r in result.steps.values():
            if r.status == WAITING:
                r.status = NOT_STARTED

    def _attempt(self, call: Callable[[], Any], step: Step, result: RunResult) -> AwsError | None:
        """Run one step; None when it succeeded, else its AWS error."""
        record = result.steps[step.key]
        record.status = RUNNING
        try:
            record.value = self._with_retry(call, step.retry)
        except AwsError as exc:
            record.status, record.error = FAILED, exc
            return exc
        except LedgerUnavailable as exc:
            record.status = NOT_STARTED
            result.ledger_fault = str(exc)
            return None
        record.status = DONE
        return None

    def _side_by_side(self, ctx: AuditContext, state: _RunState, unwritten: list[Any]) -> None:
        """Steps on a pool of `workers` threads, each started as soon as the steps it depends
        on are done and a worker is free: no step waits for unrelated steps that happen to
        be as deep in the plan (a stopped instance's attach follows its own detach, not the
        slowest replace of 50). Steps heading the longest chains of dependents start first
        (plan order among equals), so those chains overlap the rest.

        Each call is audited: its intent is durable before it is sent. A worker keeps one
        audited sequence for the steps it runs, so a step's outcome is committed with the
        worker's next intent (one commit per call instead of two, as on a single thread),
        and intents and outcomes of different workers written at the same moment share a
        commit (the audit log's group commit). The outcome of a step that others depend on
        is written before they start, a failure's at once, and a failed unit is undone (on
        this thread) once none of its steps is running; the workers' last outcomes are
        written when the run's steps are over."""
        plan, result = state.plan, state.result
        audited = self.services.audited
        depth = _chain_depths(plan)
        position = {s.key: n for n, s in enumerate(plan.steps)}
        waiting = sorted(plan.steps, key=lambda s: (-depth[s.key], position[s.key]))
        local = threading.local()
        sequences: list[AuditedSequence] = []

        def one(step: Step) -> AwsError | None:
            calls: AuditedSequence | None = getattr(local, "calls", None)
            if calls is None:
                calls = local.calls = AuditedSequence(audited, ctx)
                with self._unwritten_lock:
                    sequences.append(calls)
            error = self._attempt(functools.partial(self._call, calls, step), step, result)
            if error is not None or depth[step.key] > 1:
                # In the ledger before the unit's undo, or before the intents of the steps
                # that depend on it (the ledger shows what each call waited for).
                calls.flush()
            return error

        running: dict[Future[AwsError | None], Step] = {}
        failed: list[tuple[Step, AwsError]] = []
        with ThreadPoolExecutor(self._workers, thread_name_prefix="operation") as pool:
            while True:
                for step in self._start_ready(state, waiting, self._workers - len(running)):
                    # In the run's context: a member account's calls go out as the RoleDesk
                    # user who started the run (app.accounts.context).
                    running[pool.submit(contextvars.copy_context().run, one, step)] = step
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    step = running.pop(future)
                    error = future.result()
                    if error is None:
                        state.settle([(step, None)])
                    else:
                        state.failed_units.add(step.unit)  # nothing more of it starts
                        failed.append((step, error))
                busy = {s.unit for s in running.values()}
                for item in [f for f in failed if f[0].unit not in busy]:
                    failed.remove(item)
                    state.settle([item])
        for calls in sequences:
            calls.flush()
            if calls.unwritten:  # AWS answered, but its outcome could not be written
                unwritten.extend(calls.unwritten)
                result.ledger_fault = "the outcome of a call could not be written"

    @staticmethod
    def _start_ready(state: _RunState, waiting: list[Step], free: int) -> list[Step]:
        """Up to `free` steps of `waiting` (in its order) that may start now, taken out of
        it; steps that never will are taken out too (marked not started)."""
        starting: list[Step] = []
        for step in list(waiting):
            if len(starting) >= free:
                break
            ready = state.readiness(step)
            if ready is None:
                continue  # what it depends on is still waiting or running
            waiting.remove(step)
            if ready:
                starting.append(step)
        return starting

    def _call(self, calls: AuditedSequence, step: Step) -> Any:
        return calls.call(step_change(step), step.call, **step.kwargs)

    def _with_retry(self, call: Callable[[], Any], retryable: Any) -> Any:
        if retryable is None:
            return call()
        return self._retry.run(call, retryable)

    def undo(
        self,
        calls: AuditedSequence,
        steps: list[Step],
        result: RunResult | None,
        *,
        skip_missing: bool = False,
    ) -> tuple[list[str], list[str]]:
        """Undo `steps`, newest first, each through the audited path. Returns the labels of
        what was undone and the errors of what could not be. With `skip_missing`, an undo that
        finds nothing (that call had not happened, or was undone already) is neither."""
        undone: list[str] = []
        errors: list[str] = []
        for step in reversed(steps):
            if step.undo is None:
                continue
            undo = step.undo
            record = result.steps.get(step.key) if result else None
            try:
                self._with_retry(
                    functools.partial(calls.call, undo_change(step), undo.call, **undo.kwargs),
                    undo.retry,
                )
            except AwsError as exc:
                if skip_missing and isinstance(exc, NotFound):
                    continue
                errors.append(f"{undo.label}: {exc.code} {exc.message}")
                if record is not None:
                    record.status, record.undo_error = UNDO_FAILED, exc
                continue
            undone.append(undo.label)
            if record is not None and result is not None:
                record.status = UNDONE
                result.undone_order.append(undo.label)
        if result is not None:
            result.undo_errors += errors
        return undone, errors


@dataclass
class _RunState:
    """What a run has done so far and what it may still start."""

    engine: Engine
    plan: Plan
    calls: AuditedSequence
    result: RunResult
    completed: list[Step]
    failed_units: set[str] = field(default_factory=set)
    # Each step's place in the plan's order (wave, then plan order): completed steps are
    # kept in it, so an undo goes newest first in the plan whichever call answered first.
    rank: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ordered = [s.key for wave in self.plan.waves() for s in wave]
        self.rank = {key: n for n, key in enumerate(ordered)}

    def may_start(self, step: Step) -> bool:
        steps = self.result.steps
        blocked = (
            self.result.ledger_fault is not None
            or step.unit in self.failed_units
            or any(steps[d].status != DONE for d in step.depends_on)
        )
        if blocked:
            steps[step.key].status = NOT_STARTED
        return not blocked

    def readiness(self, step: Step) -> bool | None:
        """True: `step` may start now; False: it never will (marked not started); None:
        what it depends on is still waiting or running."""
        steps = self.result.steps
        pending = any(steps[d].status in (WAITING, RUNNING) for d in step.depends_on)
        if pending and self.result.ledger_fault is None and step.unit not in self.failed_units:
            return None
        return self.may_start(step)

    def settle(self, outcomes: list[tuple[Step, AwsError | None]]) -> None:
        """Note what succeeded; apply the plan's rule to what failed."""
        result = self.result
        self.completed.extend(s for s, _ in outcomes if result.steps[s.key].status == DONE)
        self.completed.sort(key=lambda s: self.rank[s.key])
        for step, error in outcomes:
            if error is None or result.ledger_fault is not None:
                continue
            self.failed_units.add(step.unit)
            if self.plan.on_failure == STOP:
                continue  # nothing undone; the rest of the unit is not started
            try:
                # Steps of this unit not undone yet: when several steps of one wave fail,
                # the first failure's undo has already undone the unit's completed steps.
                own_unit = [
                    s
                    for s in self.completed
                    if s.unit == step.unit and result.steps[s.key].status == DONE
                ]
                self.engine.undo(self.calls, own_unit, result)
            except LedgerUnavailable as exc:
                result.ledger_fault = str(exc)


@dataclass
class SettleRun:
    """A run stopped by a ledger fault: write what it could not, undo what it did (plans
    whose rule is `undo`), record its end, and tell its owner. Each part is done once; a
    new fault midway leaves the rest for the next attempt."""

    engine: Engine
    ctx: AuditContext
    plan: Plan
    result: RunResult
    completed: list[Step]
    unwritten: list[Any]
    summary: Callable[[RunResult], dict[str, Any]] | None
    finish: Finish | None
    undone: bool = False
    closing: CloseRun | None = None

    @property
    def label(self) -> str:
        return f"{self.plan.kind} {self.ctx.operation_id}"

    def __call__(self) -> None:
        audited = self.engine.services.audited
        while self.unwritten:
            audited.audit_log.append(self.unwritten[0])
            self.unwritten.pop(0)
        if not self.undone:
            if self.plan.on_failure == UNDO:
                with audited.sequence(self.ctx) as calls:
                    left = [s for s in self.completed if self.result.steps[s.key].status == DONE]
                    self.engine.undo(calls, left, self.result, skip_missing=True)
                if calls.unwritten:
                    self.unwritten = calls.unwritten
                    raise LedgerUnavailable("the undo's last outcome could not be written")
            self.undone = True
        if self.closing is None:
            self.result.settled = True
            self.closing = CloseRun(
                self.engine, self.ctx, self.plan, self.result, self.summary, self.finish
            )
        self.closing()


@dataclass
class CloseRun:
    """The finish record, then the owner's `finish`; each done once, retried until both are."""

    engine: Engine
    ctx: AuditContext
    plan: Plan
    result: RunResult
    summary: Callable[[RunResult], dict[str, Any]] | None
    finish: Finish | None
    recorded: bool = False

    @property
    def label(self) -> str:
        return f"end of {self.plan.kind} {self.ctx.operation_id}"

    def __call__(self) -> None:
        if not self.recorded:
            extra = self.summary(self.result) if self.summary else {}
            self.engine.record(
                self.ctx, self.plan.finish_action, {**self.result.record(), **extra}, self.plan
            )
            self.recorded = True
        if self.finish is not None:
            self.finish(self.result)
