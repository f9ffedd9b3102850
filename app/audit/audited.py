"""The one audited path for every AWS change.

`AuditedAws.call` writes an `intent` entry (outcome pending) before the call, opens the guard
that lets exactly that declared action run, makes the call, and writes an `outcome` entry
(succeeded or failed, AWS request id, error). If the intent cannot be written, the AWS call is
not made. If the outcome cannot be written, the intent stays pending and start-up
reconciliation settles it.
"""

from __future__ import annotations

import getpass
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from typing import Any, ParamSpec, TypeVar

from app.audit.log import AuditLog, NewEntry
from app.aws.calls import action_of, audit_guard
from app.aws.clients import last_request_id
from app.aws.errors import AwsError

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


class AuditedAws:
    """Runs declared AWS change calls with an audit record around each."""

    def __init__(self, audit_log: AuditLog, *, account_id: str, region: str) -> None:
        self._log = audit_log
        self.account_id = account_id
        self.region = region
        self._listeners: list[SuccessListener] = []

    def on_success(self, listener: SuccessListener) -> None:
        """Called with (action, target) after each successful change; used by caches."""
        self._listeners.append(listener)

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
        Raises whatever `fn` raises (an AwsError), after recording it.
        """
        action = action_of(fn)
        region = change.region or self.region
        params = change.params if change.params is not None else jsonable(kwargs)
        intent = self._log.append(
            NewEntry(
                kind="intent",
                action=action,
                actor=ctx.actor,
                outcome="pending",
                operation_id=ctx.operation_id,
                source_ip=ctx.source_ip,
                user_agent=ctx.user_agent,
                account_id=self.account_id,
                region=region,
                target=change.target,
                params=params,
                before=change.before,
            )
        )
        last_request_id.set(None)
        try:
            with audit_guard(action):
                result = fn(*args, **kwargs)
        except AwsError as exc:
            self._complete(intent.event_id, ctx, action, change.target, region, "failed", exc)
            raise
        self._complete(intent.event_id, ctx, action, change.target, region, "succeeded", None)
        for listener in self._listeners:
            listener(action, change.target)
        return result

    def _complete(
        self,
        event_id: str,
        ctx: AuditContext,
        action: str,
        target: str | None,
        region: str,
        outcome: str,
        error: AwsError | None,
    ) -> None:
        try:
            self._log.append(
                NewEntry(
                    kind="outcome",
                    event_id=event_id,
                    action=action,
                    actor=ctx.actor,
                    outcome=outcome,
                    operation_id=ctx.operation_id,
                    source_ip=ctx.source_ip,
                    user_agent=ctx.user_agent,
                    account_id=self.account_id,
                    region=region,
                    target=target,
                    aws_request_id=(error.request_id if error else last_request_id.get()),
                    error_code=error.code if error else None,
                    error_message=error.message if error else None,
                )
            )
        except Exception:
            # The AWS call already happened; the intent stays pending for reconciliation.
            log.exception("could not record the outcome of %s on %s", action, target)
