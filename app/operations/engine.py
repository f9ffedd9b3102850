"""Runs a Plan through the audited path: intent durable before each call, outcome after.

Steps run in dependency order; with `workers` > 1 each step starts as soon as the steps it
depends on are done, side by side with the others in flight (`_SideBySide`: the intents of
the steps started together share one commit, and each call's outcome goes out with the next
commit). Each step's intent carries the step's key, so the
progress page (app.operations.progress) rebuilds the run from the ledger alone.

A failed step follows the plan's rule (app.operations.plan): undo its unit, newest first, or
stop. A step whose answer was lost but which the reconciler found made in AWS (TookEffect,
app.audit.audited) is done with an error: it fails its unit like any failed step, and its
unit's undo includes it, so nothing it made is orphaned. Unless no undo can take it back and
no step waits on its answer: then it is simply done (`_RunState.note`).

If the ledger cannot be written (the database failed), the next call is not made: the run
stops, and its undo (audited) is handed to the settle loop (app.operations.settle), which
does it as soon as the database answers again.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.audit.audited import AuditContext, AuditedSequence, Change, LedgerUnavailable, jsonable
from app.audit.log import NewEntry
from app.aws.errors import AwsError, NotFound, TookEffect
from app.operations.plan import UNDO, Plan, Step
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

# Threads for side-by-side steps, shared by every run of this process and kept between runs
# (starting threads for each wave of each run cost more than the rest of its bookkeeping).
# Each run bounds its own steps in flight (`workers`); this only caps the total.
_STEP_THREADS = ThreadPoolExecutor(64, thread_name_prefix="engine-step")


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
        return self.ledger_fault is None and all(_succeeded(r) for r in self.steps.values())

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
            # Why each failed step failed: the ledger holds the errors of calls made, but a
            # step refused before its call (a name found taken under the name's lock) has
            # no call entry, and its progress page would not know why.
            "errors": {
                k: {"code": r.error.code, "message": r.error.message}
                for k, r in self.steps.items()
                if r.status == FAILED and r.error is not None
            },
        }


def _succeeded(record: StepResult) -> bool:
    """Done without an error: a step done with one (TookEffect) made its change but still
    failed the run, so nothing that depends on it starts."""
    return record.status == DONE and record.error is None


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


class Engine:
    def __init__(
        self, services: Services, *, retry: RetryPolicy | None = None, workers: int = 1
    ) -> None:
        self.services = services
        self._retry = retry or RetryPolicy()
        self._workers = max(1, workers)

    # Ledger records around a run --------------------------------------------------------

    def record_start(self, ctx: AuditContext, plan: Plan) -> None:
        """The plan as the operation's first ledger entry (its pages read it back)."""
        self.record(ctx, plan.start_action, plan.record(), plan)

    def record(self, ctx: AuditContext, action: str, params: dict[str, Any], plan: Plan) -> None:
        self.services.audit_log.append(self._entry(ctx, action, params, plan))

    def _entry(
        self, ctx: AuditContext, action: str, params: dict[str, Any], plan: Plan
    ) -> NewEntry:
        return ctx.record(
            action,
            account_id=self.services.identity.account,
            region=plan.details.get("region"),
            params={"region": plan.details.get("region"), **params},
        )

    # Running ----------------------------------------------------------------------------

    def run(
        self,
        ctx: AuditContext,
        plan: Plan,
        *,
        summary: Callable[[RunResult], dict[str, Any]] | None = None,
        finish: Finish | None = None,
        start: bool = False,
    ) -> RunResult:
        """Run `plan`, then write the finish record and call `finish`. After a ledger fault
        both wait for the settle loop. The start record is written by `record_start` before,
        or with `start` in the same commit as the first calls' intents (durable before any
        call is sent, one commit fewer)."""
        result = RunResult(
            plan, ctx.operation_id, {s.key: StepResult(s.key, s.label) for s in plan.steps}
        )
        # The access review re-reads the roles the run changed once, when the run is over and
        # its owner told (app.review.scan): its calls then compete with none of the run's.
        with self.services.access_scan.deferred():
            return self._run(ctx, plan, result, summary, finish, start)

    def _run(
        self,
        ctx: AuditContext,
        plan: Plan,
        result: RunResult,
        summary: Callable[[RunResult], dict[str, Any]] | None,
        finish: Finish | None,
        start: bool,
    ) -> RunResult:
        completed: list[Step] = []
        closing: NewEntry | None = None  # the finish record, written with the last outcomes
        try:
            with self.services.audited.sequence(ctx) as calls:
                if start:
                    calls.hold(self._entry(ctx, plan.start_action, plan.record(), plan))
                self._run_waves(plan, calls, result, completed)
                # The roles list re-reads each changed role off the run's path; the run is
                # not over until those reads are stored, so every process shows the change
                # once it is done.
                self.services.inventory.settle()
                self.services.instances.settle()  # the same for the EC2 instances list
                self.services.settle_notices()  # and the instance profiles' notices
                if result.ledger_fault is None:
                    # The finish record goes out in the commit of the last outcomes (one
                    # commit fewer). If that commit fails, the settle loop writes the
                    # outcomes and a finish record of its own, as below.
                    closing = self._entry(ctx, plan.finish_action, _finish(result, summary), plan)
                    calls.hold(closing)
        except Exception:
            log.exception("operation %s (%s) stopped", ctx.operation_id, plan.kind)
            self._finish_quietly(ctx, plan, {**result.record(), "crashed": True})
            raise
        unwritten = [entry for entry in calls.unwritten if entry is not closing]
        if result.ledger_fault is None and unwritten:
            result.ledger_fault = "the outcome of the last call could not be written"
        if result.ledger_fault is not None:
            result.settled = False
            self.services.settler.defer(
                SettleRun(self, ctx, plan, result, completed, unwritten, summary, finish)
            )
            return result
        self.close(ctx, plan, result, summary, finish, recorded=closing is not None)
        return result

    def close(
        self,
        ctx: AuditContext,
        plan: Plan,
        result: RunResult,
        summary: Callable[[RunResult], dict[str, Any]] | None,
        finish: Finish | None,
        *,
        recorded: bool = False,
    ) -> None:
        """Record the run's end (unless `recorded` already) and tell its owner; retried by
        the settle loop if the database fails right then."""
        self.services.settler.defer(
            CloseRun(self, ctx, plan, result, summary, finish, recorded=recorded)
        )

    def _finish_quietly(self, ctx: AuditContext, plan: Plan, params: dict[str, Any]) -> None:
        try:
            self.record(ctx, plan.finish_action, params, plan)
        except Exception:
            log.exception("could not record the end of operation %s", ctx.operation_id)

    def _run_waves(
        self, plan: Plan, calls: AuditedSequence, result: RunResult, completed: list[Step]
    ) -> None:
        state = _RunState(self, plan, calls, result, completed)
        if self._workers > 1:
            _SideBySide(self, state, self._workers).run()
        for wave in plan.waves() if self._workers == 1 else []:
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
        except TookEffect as exc:
            # AWS's answer was lost but the change was made: done, so a rollback undoes it,
            # and still an error, so the run fails as it would have.
            record.status, record.error = DONE, exc
            return exc
        except AwsError as exc:
            record.status, record.error = FAILED, exc
            return exc
        except LedgerUnavailable as exc:
            record.status = NOT_STARTED
            result.ledger_fault = str(exc)
            return None
        record.status = DONE
        return None

    def _call(self, calls: AuditedSequence, step: Step) -> Any:
        return calls.call(step_change(step), step.call, **step.kwargs)

    def _with_retry(self, call: Callable[[], Any], retryable: Any) -> Any:
        if retryable is None:
            return call()
        # A change found made after its answer was lost is never sent again.
        return self._retry.run(call, lambda exc: not isinstance(exc, TookEffect) and retryable(exc))

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
            except TookEffect as exc:
                # The undo's answer was lost, but the check found it made: it is undone.
                log.warning("%s: answer lost, found made: %s", undo.label, exc.note)
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


def _finish(
    result: RunResult, summary: Callable[[RunResult], dict[str, Any]] | None
) -> dict[str, Any]:
    """The finish record's parameters."""
    return {**result.record(), **(summary(result) if summary else {})}


def _chain_depths(plan: Plan) -> dict[str, int]:
    """For each step, the most steps in a chain that starts with it (itself and what
    depends on it, transitively)."""
    dependents: dict[str, list[str]] = {s.key: [] for s in plan.steps}
    for s in plan.steps:
        for d in s.depends_on:
            dependents[d].append(s.key)
    depth: dict[str, int] = {}
    for wave in reversed(plan.waves()):
        for s in wave:
            depth[s.key] = 1 + max((depth[k] for k in dependents[s.key]), default=0)
    return depth


@dataclass
class _SideBySide:
    """A plan's steps side by side, each started as soon as the steps it depends on are done
    (not wave by wave: a slow attach does not hold back AddRoleToInstanceProfile once its
    CreateInstanceProfile has answered), at most `workers` in flight.

    The intents of the steps started together are committed in one transaction with the
    outcomes held so far (`AuditedSequence.open`) before any of them is sent; each call then
    runs on a thread of a long-lived pool and holds its outcome for the next commit: the
    next start's, or, when nothing can start until a call in flight answers, one made then
    (the progress page reads the ledger). So a run costs about one commit per start instead
    of two per call, and no thread is started per run (both were most of a create's own
    time, issue 13). Steps heading the longest chains of dependents start first. A step
    that is the only one to run runs on this thread (no hand-off). A retried attempt writes
    an intent of its own.

    A failed step's unit starts nothing more; its completed steps are undone (plans whose
    rule is `undo`) once none of the unit's steps is still in flight, newest first in the
    plan's order."""

    engine: Engine
    state: _RunState
    workers: int
    running: dict[Future[AwsError | None], Step] = field(default_factory=dict)
    to_undo: list[str] = field(default_factory=list)  # failed units, once nothing in flight

    def run(self) -> None:
        # Steps heading the longest chains of dependents first (plan order among equals),
        # so those chains overlap the rest: a stopped instance's detach-then-attach starts
        # before the one-call replaces of the other 49 instances.
        in_order = [s for wave in self.state.plan.waves() for s in wave]
        depth = _chain_depths(self.state.plan)
        position = {s.key: n for n, s in enumerate(in_order)}
        waiting = sorted(in_order, key=lambda s: (-depth[s.key], position[s.key]))
        while True:
            ready, waiting = self._ready(waiting)
            free = self.workers - len(self.running)
            start, waiting = ready[:free], ready[free:] + waiting
            if start and not self.running and not waiting and len(start) == 1:
                for step, intent in self._dispatch(start):
                    self._done(step, self._one(step, intent))
                continue
            if start:
                for step, intent in self._dispatch(start):
                    # Each step in the run's context: a member account's calls go out as the
                    # RoleDesk user who started the run (app.accounts.context.acting_user).
                    context = contextvars.copy_context()
                    self.running[_STEP_THREADS.submit(context.run, self._one, step, intent)] = step
                continue
            if not self.running:
                return
            # Nothing starts until a call in flight answers, which on real AWS may take
            # seconds: write the outcomes held so far now, so the progress page (read from
            # the ledger) shows those steps done instead of still running.
            self.state.calls.flush()
            finished, _ = wait(self.running, return_when=FIRST_COMPLETED)
            for future in finished:
                step = self.running.pop(future)
                try:
                    error = future.result()
                except BaseException:  # a crash: the others still answer (and are held)
                    wait(self.running)
                    raise
                self._done(step, error)

    def _ready(self, waiting: list[Step]) -> tuple[list[Step], list[Step]]:
        """(steps that may start now, steps still waiting); steps that can no longer start
        (a ledger fault, their unit failed, a step they need did not succeed) are marked not
        started and dropped."""
        steps = self.state.result.steps
        ready: list[Step] = []
        left: list[Step] = []
        for step in waiting:
            needs = [steps[d] for d in step.depends_on]
            if all(_succeeded(r) for r in needs):
                if self.state.may_start(step):  # else marked not started
                    ready.append(step)
            elif self._blocked(step) or any(
                r.status not in (WAITING, RUNNING, DONE) or r.error is not None for r in needs
            ):
                steps[step.key].status = NOT_STARTED
            else:
                left.append(step)
        return ready, left

    def _blocked(self, step: Step) -> bool:
        return self.state.result.ledger_fault is not None or step.unit in self.state.failed_units

    def _done(self, step: Step, error: AwsError | None) -> None:
        if self.state.note(step, error) and self.state.plan.on_failure == UNDO:
            self.to_undo.append(step.unit)
        in_flight = {s.unit for s in self.running.values()}
        for unit in [u for u in dict.fromkeys(self.to_undo) if u not in in_flight]:
            self.to_undo = [u for u in self.to_undo if u != unit]
            self.state.undo_unit(unit)

    def _one(self, step: Step, intent: NewEntry) -> AwsError | None:
        """Send `step` (its intent committed); a retry writes an intent of its own."""
        calls = self.state.calls
        first = [functools.partial(calls.send, intent, step.call, **step.kwargs)]

        def attempt() -> Any:
            return first.pop()() if first else self.engine._call(calls, step)

        return self.engine._attempt(attempt, step, self.state.result)

    def _dispatch(self, batch: list[Step]) -> list[tuple[Step, NewEntry]]:
        """Commit the intents of `batch` (with the outcomes held so far); none is sent if
        that fails."""
        result = self.state.result
        try:
            intents = self.state.calls.open([(step_change(s), s.call, s.kwargs) for s in batch])
        except LedgerUnavailable as exc:
            result.ledger_fault = str(exc)
            for s in batch:
                result.steps[s.key].status = NOT_STARTED
            return []
        for s in batch:
            result.steps[s.key].status = RUNNING
        return list(zip(batch, intents, strict=True))


@dataclass
class _RunState:
    """What a run has done so far and what it may still start."""

    engine: Engine
    plan: Plan
    calls: AuditedSequence
    result: RunResult
    completed: list[Step]
    failed_units: set[str] = field(default_factory=set)

    def may_start(self, step: Step) -> bool:
        steps = self.result.steps
        blocked = (
            self.result.ledger_fault is not None
            or step.unit in self.failed_units
            or any(not _succeeded(steps[d]) for d in step.depends_on)
        )
        if blocked:
            steps[step.key].status = NOT_STARTED
        return not blocked

    def settle(self, outcomes: list[tuple[Step, AwsError | None]]) -> None:
        """Note what succeeded; apply the plan's rule to what failed."""
        for step, error in outcomes:
            if self.note(step, error) and self.plan.on_failure == UNDO:
                self.undo_unit(step.unit)

    def note(self, step: Step, error: AwsError | None) -> bool:
        """Note a step's end; True when it failed (its unit then starts nothing more)."""
        result = self.result
        if result.steps[step.key].status == DONE:
            self.completed.append(step)
        if error is None or result.ledger_fault is not None:
            return False
        if isinstance(error, TookEffect) and step.undo is None and not self.plan.waited_on(step):
            # Made, with no undo and nothing waiting on its answer: the change stays whatever
            # the run does, so it is done. Undoing its unit's other steps around it would
            # leave a state nobody asked for (a stopped instance's old role attached again
            # beside the new one: AWS refuses, and the restore retried for minutes).
            result.steps[step.key].error = None
            return False
        self.failed_units.add(step.unit)
        return True

    def undo_unit(self, unit: str) -> None:
        """Undo the unit's completed steps not undone yet (when several of its steps fail,
        the first failure's undo has already undone the others), newest first in the plan's
        order."""
        result = self.result
        if result.ledger_fault is not None:
            return
        order = {s.key: i for i, s in enumerate(s for w in self.plan.waves() for s in w)}
        own_unit = sorted(
            (s for s in self.completed if s.unit == unit and result.steps[s.key].status == DONE),
            key=lambda s: order[s.key],
        )
        try:
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
            self.engine.record(
                self.ctx, self.plan.finish_action, _finish(self.result, self.summary), self.plan
            )
            self.recorded = True
        if self.finish is not None:
            self.finish(self.result)
