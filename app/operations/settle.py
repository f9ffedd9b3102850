"""The settle loop: finishes runs that a database fault cut short, without waiting for a
restart.

When the audit ledger cannot be written, the engine stops the run before its next AWS call
and hands the rest to `Settler.defer`: write the outcomes that could not be written, undo
what the run did (audited), record its end, update its owner (a wizard draft, say). A
background thread retries that every `interval` seconds until the database answers; it exits
when nothing is left, and starts again with the next deferred job.

A process that dies instead leaves intents pending and runs unfinished; start-up handles
those (app.audit.reconcile, then `mark_interrupted` below and the wizard's own settling).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import or_, select

from app.models import AuditEvent

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0


class Job(Protocol):
    @property
    def label(self) -> str: ...

    def __call__(self) -> None: ...


class Settler:
    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self._jobs: list[Job] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition(self._lock)

    def defer(self, job: Job) -> None:
        """Try `job` now; if it fails, retry it in the background until it succeeds."""
        if self._try(job):
            return
        with self._lock:
            self._jobs.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="settle", daemon=True)
                self._thread.start()

    @property
    def waiting(self) -> list[str]:
        with self._lock:
            return [j.label for j in self._jobs]

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is left (tests, shutdown); True if none is."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _try(self, job: Job) -> bool:
        try:
            job()
        except Exception as exc:  # the database (or AWS) is not answering yet
            log.warning("settling %s postponed: %s", job.label, exc)
            return False
        log.info("settled %s", job.label)
        return True

    def _loop(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                jobs = list(self._jobs)
            done = [job for job in jobs if self._try(job)]
            with self._idle:
                self._jobs = [j for j in self._jobs if j not in done]
                if not self._jobs:
                    self._thread = None
                    self._idle.notify_all()
                    return


def call_later(fn: Callable[[], None], label: str) -> Job:
    """A plain function as a settle job."""

    class _Call:
        def __init__(self) -> None:
            self.label = label

        def __call__(self) -> None:
            fn()

    return _Call()


RECOVERY_ACTOR = "roledesk-recovery"
START_PREFIX = "roledesk:Start"
FINISH_PREFIX = "roledesk:Finish"


def close_interrupted(services: Any) -> list[str]:
    """At start-up, after reconciliation: every operation that started and never finished
    was cut short by a stop of RoleDesk. Record its end (each step as the ledger tells it), so
    its page says it stopped and what was and was not done, instead of "waiting"."""
    from app.audit.audited import AuditContext
    from app.operations import progress

    db = services.db
    with db.sessions() as session:
        records = session.execute(
            select(AuditEvent.operation_id, AuditEvent.action).where(
                AuditEvent.kind == "record",
                or_(
                    AuditEvent.action.like(f"{START_PREFIX}%"),
                    AuditEvent.action.like(f"{FINISH_PREFIX}%"),
                ),
            )
        ).all()
    started = {op: action for op, action in records if action.startswith(START_PREFIX) and op}
    finished = {op for op, action in records if action.startswith(FINISH_PREFIX)}
    closed = []
    for operation_id, action in started.items():
        if operation_id in finished:
            continue
        found = progress.build(progress.entries_of(db, operation_id))
        steps = {s.key: s.status for s in found.steps} if found else {}
        ctx = AuditContext(actor=RECOVERY_ACTOR, operation_id=operation_id)
        services.audit_log.append(
            ctx.record(
                FINISH_PREFIX + action.removeprefix(START_PREFIX),
                account_id=services.identity.account,
                params={
                    "interrupted": True,
                    "crashed": True,
                    "steps": steps,
                    "note": "RoleDesk stopped during this operation; found at the next start.",
                },
            )
        )
        closed.append(operation_id)
    return closed
