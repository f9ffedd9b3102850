"""The one audited path for every AWS change.

`AuditedAws.call` writes an `intent` entry (outcome pending) before the call, opens the guard
that lets exactly that declared action run, makes the call, and writes an `outcome` entry
(succeeded or failed, AWS request id, error). If the intent cannot be written, the AWS call is
not made. If the outcome cannot be written, the intent stays pending and start-up
reconciliation settles it (at start-up, or sooner: app.operations.settle).

When the request may have reached AWS but its answer was lost (app.aws.errors.answer_lost),
"failed" would be false: the outcome is written as `unknown`, then the reconciler checks AWS
at once and appends its verdict as the event's latest outcome. A change it finds made raises
TookEffect, so callers treat it as done (the engine undoes it in a rollback).
"""

from __future__ import annotations

import getpass
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from app.audit.log import AuditLog, NewEntry
from app.aws.calls import action_of, audit_guard
from app.aws.clients import last_request_id
from app.aws.errors import AwsError, TookEffect, answer_lost

if TYPE_CHECKING:
    from app.audit.reconcile import Verdict

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class AuditContext:
    """Who is acting, from where, and which operation the calls belong to."""

    actor: str = field(default_factory=os_user)
    source_ip: str | None = None
    user_agent: str | None = None
    operation_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def new_operation(self) -> AuditContext:
        return replace(self, operation_id=str(uuid.uuid4()))

    def record(self, action: str, *, outcome: str = "succeeded", **fields: Any) -> NewEntry:
        """A `record` entry (a RoleDesk action with no AWS call) by this actor."""
        return NewEntry(
            kind="record",
            action=action,
            actor=self.actor,
            outcome=outcome,
            operation_id=self.operation_id,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
            **fields,
        )


@dataclass(frozen=True)
class Change:
    """What an audited call changes: its target (ARN or name) and what to record."""

    target: str | None
    params: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    region: str | None = None
    after: dict[str, Any] | None = None  # the state the call asks for (the event page diffs)
    account_id: str | None = None  # a member account's call (app.accounts); else the hub's


def jsonable(value: Any) -> Any:
    """Request arguments as JSON values (dataclasses such as Tag become objects)."""
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


SuccessListener = Callable[[str, str | None], None]
ResultListener = Callable[[str, str | None, Any], None]
# Checks in AWS the call of a committed intent whose answer was lost and appends the verdict
# to the ledger (app.audit.reconcile.lost_answer_settler); None: AWS could not tell now.
LostAnswerSettler = Callable[[NewEntry], "Verdict | None"]


class AuditedAws:
    """Runs declared AWS change calls with an audit record around each."""

    def __init__(
        self,
        audit_log: AuditLog,
        *,
        account_id: str,
        region: str,
        settle_lost: LostAnswerSettler | None = None,
    ) -> None:
        self.audit_log = audit_log
        self.account_id = account_id
        self.region = region
        # Set where the services are built (it needs their gateways); without it a lost
        # answer stays `unknown` until someone checks.
        self.settle_lost = settle_lost
        self.listeners: list[SuccessListener] = []
        self.result_listeners: list[ResultListener] = []

    def on_success(self, listener: SuccessListener) -> None:
        """Called with (action, target) after each successful change; used by caches."""
        self.listeners.append(listener)

    def on_result(self, listener: ResultListener) -> None:
        """Called with (action, target, what the call returned) after each successful
        change: for a cache that can take the new state from the answer rather than read
        it back from AWS."""
        self.result_listeners.append(listener)

    def call(
        self,
        ctx: AuditContext,
        change: Change,
        fn: Callable[P, R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Call `fn`, a `@changes` gateway method, with the audit record around it.

        The recorded request parameters are `change.params`, or else the call's arguments.
        Raises whatever `fn` raises (an AwsError), after recording it; when its answer was
        lost and the check found the change made, TookEffect (see AuditedSequence.send).
        """
        with self.sequence(ctx) as calls:
            return calls.call(change, fn, *args, **kwargs)

    @contextmanager
    def sequence(self, ctx: AuditContext) -> Iterator[AuditedSequence]:
        """Several calls of one operation made one after another (a wizard run, a rollback).

        Each call's outcome is committed in one transaction with the next call's intent, so
        a run of n calls costs n + 1 commits instead of 2n. Nothing is weaker: every intent
        is durable before its AWS call, and an outcome not yet written when the process
        dies leaves its intent pending, which start-up reconciliation settles exactly as
        for a crash between a call and its outcome. The last outcome is written on exit.
        """
        calls = AuditedSequence(self, ctx)
        try:
            yield calls
        finally:
            calls.flush()


class LedgerUnavailable(RuntimeError):
    """The audit ledger could not be written, so the next AWS call was not made."""


class AuditedSequence:
    """Audited calls of one operation; see AuditedAws.sequence.

    Calls may also be sent side by side (the operations engine's waves): `open` commits the
    intents of calls about to be sent together, in one transaction with the outcomes held so
    far, and `send` makes one such call (on any thread) and holds its outcome for the next
    commit. Every intent is still durable before its call is sent.
    """

    def __init__(self, audited: AuditedAws, ctx: AuditContext) -> None:
        self._audited = audited
        self._ctx = ctx
        # Outcomes of calls made, not yet written: they go out with the next intents (or on
        # exit), in the order the calls answered.
        self._held: list[NewEntry] = []
        self._lock = threading.Lock()  # side-by-side calls hold their outcomes here
        # Outcomes of calls AWS answered that could not be written (the database failed):
        # kept so whoever settles the run can write them once the database answers.
        self.unwritten: list[NewEntry] = []

    def call(self, change: Change, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        (intent,) = self.open([(change, fn, kwargs)])
        return self.send(intent, fn, *args, **kwargs)

    def hold(self, entry: NewEntry) -> None:
        """Write `entry` (a record) with the next commit: it is durable before the next call
        is sent, without a commit of its own."""
        with self._lock:
            self._held.append(entry)

    def open(
        self, calls: list[tuple[Change, Callable[..., Any], dict[str, Any]]]
    ) -> list[NewEntry]:
        """Commit the intents of calls about to be sent (each as (change, fn, kwargs)), with
        the outcomes held so far, in one transaction. If this fails, none of them may be sent
        (LedgerUnavailable); the held outcomes are kept (see unwritten)."""
        audited, ctx = self._audited, self._ctx
        intents = [
            NewEntry(
                kind="intent",
                action=action_of(fn),
                actor=ctx.actor,
                outcome="pending",
                operation_id=ctx.operation_id,
                source_ip=ctx.source_ip,
                user_agent=ctx.user_agent,
                account_id=change.account_id or audited.account_id,
                region=change.region or audited.region,
                target=change.target,
                params=change.params if change.params is not None else jsonable(kwargs),
                before=change.before,
                after=change.after,
            )
            for change, fn, kwargs in calls
        ]
        with self._lock:
            held, self._held = self._held, []
        try:
            audited.audit_log.append_all(held + intents)
        except Exception as exc:
            with self._lock:
                self._held[:0] = held
            raise LedgerUnavailable(f"the audit ledger could not be written: {exc}") from exc
        return intents

    def send(self, intent: NewEntry, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Make the call whose intent `open` committed; hold its outcome.

        If the call's answer was lost (app.aws.errors.answer_lost), its outcome is written
        `unknown` at once and the call is checked in AWS (AuditedAws.settle_lost): found made,
        TookEffect is raised (carrying the original error); otherwise the original error.
        """
        last_request_id.set(None)
        try:
            with audit_guard(intent.action):
                result = fn(*args, **kwargs)
        except AwsError as exc:
            if not answer_lost(exc):
                self.hold(self._outcome(intent, "failed", exc))
                raise
            verdict = self._settle_lost(intent, exc)
            if verdict is None or verdict.outcome != "succeeded":
                raise
            self._tell_listeners(intent, None, with_result=False)
            raise TookEffect(exc, verdict.note) from exc
        self.hold(self._outcome(intent, "succeeded", None))
        self._tell_listeners(intent, result, with_result=True)
        return result

    def _tell_listeners(self, intent: NewEntry, result: Any, *, with_result: bool) -> None:
        audited = self._audited
        if intent.account_id != audited.account_id:  # the caches hold the hub account only
            return
        for listener in audited.listeners:
            listener(intent.action, intent.target)
        if with_result:  # a lost answer has no result: the caches read the change back
            for found in audited.result_listeners:
                found(intent.action, intent.target, result)

    def _settle_lost(self, intent: NewEntry, exc: AwsError) -> Verdict | None:
        """Write `unknown` for a call whose answer was lost, then have the reconciler check
        it; its verdict (appended by it) is returned, or None when nothing was checked.

        The unknown outcome is committed now, with the outcomes held so far, rather than
        held: the reconciler's entry must come after it in the ledger, and a held outcome
        could still be in another thread's commit when the reconciler writes."""
        with self._lock:
            held, self._held = self._held, []
        held.append(self._outcome(intent, "unknown", exc))
        try:
            self._audited.audit_log.append_all(held)
        except Exception:
            # As in flush: kept for whoever settles the run; with its outcome unwritten the
            # intent stays pending, so nothing may be appended after it now.
            log.exception("could not record the unknown outcome of %s", intent.action)
            self.unwritten.extend(held)
            return None
        settle = self._audited.settle_lost
        if settle is None:
            return None
        try:
            return settle(intent)
        except Exception:
            # The unknown outcome is written and true; the check is a best effort.
            log.exception("could not check %s on %s in AWS", intent.action, intent.target)
            return None

    def _outcome(self, intent: NewEntry, outcome: str, error: AwsError | None) -> NewEntry:
        return replace(
            intent,
            kind="outcome",
            outcome=outcome,
            params=None,
            before=None,
            after=None,
            aws_request_id=(error.request_id if error else last_request_id.get()),
            error_code=error.code if error else None,
            error_message=error.message if error else None,
        )

    def flush(self) -> None:
        """Write the held outcomes, if any."""
        with self._lock:
            held, self._held = self._held, []
        if not held:
            return
        try:
            self._audited.audit_log.append_all(held)
        except Exception:
            # The AWS calls already happened; their intents stay pending for reconciliation,
            # and the outcomes are kept for whoever settles the run.
            log.exception(
                "could not record the outcomes of %s",
                ", ".join(f"{e.action} on {e.target}" for e in held),
            )
            self.unwritten.extend(held)
