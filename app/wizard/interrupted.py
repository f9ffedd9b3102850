"""Wizard runs cut short because RoleDesk stopped mid-create, settled at start-up.

A draft still `creating` when RoleDesk starts belongs to a run that can no longer finish. Its
operation's audit entries (already reconciled with AWS by `app.audit.reconcile`) say which
create steps were, or may have been, made (each intent names its step); those are undone in
reverse order through the audited path by the operations engine, exactly as a failure during
the run would have been, and the draft is marked failed with what happened. So a crash never
leaves a half-built role behind silently. (A database fault that does not stop the process
is settled sooner, by the engine's settle loop: app.operations.settle.)
"""

from __future__ import annotations

import logging
from typing import Any

from app.audit.audited import AuditContext
from app.models import AuditEvent
from app.operations.engine import Engine
from app.operations.plan import Step
from app.operations.progress import entries_of
from app.services import Services
from app.wizard.create import plan_steps
from app.wizard.drafts import DraftStore
from app.wizard.service import Wizard

log = logging.getLogger(__name__)

ACTOR = "roledesk-recovery"
# Steps that only exist if this run created the role (the name was free when it was claimed).
_ON_THE_ROLE = ("create_role", "attach:", "inline")


def _to_undo(steps: list[Step], begun: set[str]) -> list[Step]:
    """Steps whose call may have happened: any step on a role this run created, and the
    instance-profile steps whose own call was begun."""
    role_created = bool(steps) and steps[0].key in begun
    return [s for s in steps if (role_created and s.key.startswith(_ON_THE_ROLE)) or s.key in begun]


def _begun(entries: list[AuditEvent]) -> set[str]:
    """Keys of the steps whose call happened or may have happened (not known to have failed)."""
    latest: dict[str, str] = {}
    keys: dict[str, str] = {}
    for e in entries:
        if e.kind == "intent" and "step" in (e.params or {}):
            keys[e.event_id] = str((e.params or {})["step"])
            latest[e.event_id] = "pending"
        elif e.kind == "outcome" and e.event_id in keys:
            latest[e.event_id] = e.outcome
    return {key for event, key in keys.items() if latest[event] != "failed"}


def settle_interrupted_runs(services: Services) -> list[str]:
    """Undo and close every draft left `creating`; returns their ids."""
    store = DraftStore(services.db)
    drafts = [d for d in store.creating() if not services.runs.running(d.operation_id or "")]
    if not drafts:
        return []
    wizard = Wizard(services)
    settled = []
    for draft in drafts:
        operation = draft.operation_id or ""
        begun = _begun(entries_of(services.db, operation)) if operation else set()
        plan = wizard.check(draft.data).plan
        steps = plan_steps(services, plan) if plan is not None else []
        undone, errors = _undo(services, operation, _to_undo(steps, begun))
        failure: dict[str, Any] = {
            "step": "RoleDesk stopped during this run",
            "code": "Interrupted",
            "message": "RoleDesk was stopped while creating this role. What the run had done "
            "was undone at the next start; see the operation in the audit history.",
            "plain": "RoleDesk stopped before the role was complete, so it was rolled back.",
            "request_id": None,
            "operation": None,
            "done": [],
            "rolled_back": undone,
            "rollback_errors": errors
            + ([] if plan is not None else ["The draft no longer validates: check IAM by hand."]),
        }
        store.finish(draft.id, failure=failure)
        settled.append(draft.id)
        log.warning(
            "wizard run %s (operation %s) was interrupted; undone: %s; errors: %s",
            draft.id,
            operation,
            undone,
            errors,
        )
    return settled


def _undo(services: Services, operation_id: str, steps: list[Step]) -> tuple[list[str], list[str]]:
    ctx = AuditContext(actor=ACTOR, operation_id=operation_id or AuditContext().operation_id)
    with services.audited.sequence(ctx) as calls:
        return Engine(services).undo(calls, steps, None, skip_missing=True)
