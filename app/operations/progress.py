"""A run's progress, rebuilt from the audit ledger alone: its start record (the plan), the
intents and outcomes of its steps (matched by the step key each intent carries), the undo
calls, and its finish record. So a progress page shows the truth from any worker process
and after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.db import Database
from app.models import AuditEvent

# Longer than any quiet spell inside a run (a 15 s propagation back-off, or botocore's own
# retries with 30 s read timeouts), shorter than a person's patience with a dead run.
STILL_RUNNING_WINDOW = timedelta(minutes=5)

STATUS_WORDS = {
    "waiting": "Waiting",
    "running": "In progress",
    "done": "Done",
    "failed": "Failed",
    "undone": "Undone",
    "undo_failed": "Failed, and could not be undone",
    "not_started": "Not started",
    "refused": "Refused before its call",
    "unknown": "Unknown (AWS's answer was lost, or RoleDesk stopped during the call)",
}


@dataclass
class CallEntry:
    action: str
    outcome: str  # pending, succeeded, failed, unknown
    params: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None


@dataclass
class StepProgress:
    key: str
    label: str
    action: str
    target: str
    undo_label: str | None
    status: str = "waiting"
    calls: list[CallEntry] = field(default_factory=list)
    undo_calls: list[CallEntry] = field(default_factory=list)
    refusal: tuple[str, str] | None = None  # (code, message) of a step refused before its call

    @property
    def words(self) -> str:
        return STATUS_WORDS.get(self.status, self.status)

    @property
    def last_error(self) -> CallEntry | None:
        failed = [c for c in self.calls + self.undo_calls if c.outcome == "failed"]
        return failed[-1] if failed else None


@dataclass
class Progress:
    operation_id: str
    kind: str
    title: str
    on_failure: str
    details: dict[str, Any]
    steps: list[StepProgress]
    finished: bool
    finish: dict[str, Any]
    actor: str | None = None

    @property
    def interrupted(self) -> bool:
        return bool(self.finish.get("interrupted") or self.finish.get("crashed"))

    @property
    def ledger_fault(self) -> str | None:
        found = self.finish.get("ledger_fault")
        return str(found) if found else None

    def having(self, *statuses: str) -> list[StepProgress]:
        return [s for s in self.steps if s.status in statuses]

    @property
    def ok(self) -> bool:
        return self.finished and all(s.status == "done" for s in self.steps)

    @property
    def refusals(self) -> list[StepProgress]:
        """Steps refused before any call was made (their reason is in the finish record)."""
        return [s for s in self.steps if s.refusal is not None]

    @property
    def settled_count(self) -> int:
        return len([s for s in self.steps if s.status not in ("waiting", "running")])


def entries_of(db: Database, operation_id: str) -> list[AuditEvent]:
    with db.sessions() as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.operation_id == operation_id)
            .order_by(AuditEvent.seq)
        ).all()
        session.expunge_all()
        return list(rows)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def recently_written(entries: list[AuditEvent]) -> bool:
    return bool(entries) and datetime.now(UTC) - _aware(entries[-1].recorded_at) < (
        STILL_RUNNING_WINDOW
    )


def build(entries: list[AuditEvent], running_here: bool = False) -> Progress | None:
    start = next((e for e in entries if e.kind == "record" and "engine" in (e.params or {})), None)
    if start is None or start.params is None:
        return None
    engine = start.params["engine"]
    finish_entry = next(
        (
            e
            for e in entries
            if e.kind == "record"
            and e.seq > start.seq
            and "steps" in (e.params or {})
            and e.action != start.action
        ),
        None,
    )
    finish = dict(finish_entry.params or {}) if finish_entry else {}
    # A run still writing (here or in another worker process) counts as running.
    running = running_here or (finish_entry is None and recently_written(entries))
    finished = finish_entry is not None or not running
    if finish_entry is None and finished:
        finish = {"interrupted": True}
    steps = [
        StepProgress(s["key"], s["label"], s["action"], s["target"], s.get("undo"))
        for s in engine["steps"]
    ]
    by_key = {s.key: s for s in steps}
    calls: dict[str, CallEntry] = {}
    for e in entries:
        params = e.params or {}
        if e.kind == "intent":
            call = CallEntry(e.action, "pending", params)
            calls[e.event_id] = call
            if params.get("step") in by_key:
                by_key[params["step"]].calls.append(call)
            elif params.get("undo_of") in by_key:
                by_key[params["undo_of"]].undo_calls.append(call)
        elif e.kind == "outcome" and e.event_id in calls:
            call = calls[e.event_id]
            call.outcome = e.outcome
            call.error_code, call.error_message = e.error_code, e.error_message
            call.request_id = e.aws_request_id
    refused = finish.get("errors") or {}
    for step in steps:
        step.status = _status(step, finished)
        error = refused.get(step.key)
        if not step.calls and isinstance(error, dict):
            step.status = "refused"
            step.refusal = (str(error.get("code") or ""), str(error.get("message") or ""))
    return Progress(
        start.operation_id or "",
        engine["kind"],
        engine["title"],
        engine.get("on_failure", "undo"),
        {k: v for k, v in start.params.items() if k != "engine"},
        steps,
        finished,
        finish,
        start.actor,
    )


def _status(step: StepProgress, finished: bool) -> str:
    undo = step.undo_calls[-1] if step.undo_calls else None
    if undo is not None and undo.outcome == "succeeded":
        return "undone"
    last = step.calls[-1] if step.calls else None
    if last is None:
        return "not_started" if finished else "waiting"
    if last.outcome == "pending":
        return "unknown" if finished else "running"
    if last.outcome == "failed" and undo is not None and undo.outcome == "failed":
        return "undo_failed"
    if last.outcome == "succeeded":
        if undo is not None and undo.outcome == "failed":
            return "undo_failed"
        return "done"
    if last.outcome == "unknown":
        return "unknown"
    return "failed"


def load(db: Database, operation_id: str, running_here: bool = False) -> Progress | None:
    return build(entries_of(db, operation_id), running_here)
