"""Wizard runs cut short because RoleDesk stopped mid-create, settled at start-up.

A draft still `creating` when RoleDesk starts belongs to a run that can no longer finish. Its
operation's audit entries (already reconciled with AWS by `app.audit.reconcile`) say which
create calls were, or may have been, made; those are undone in reverse order through the
audited path, exactly as a failure during the run would have been, and the draft is marked
failed with what happened. So a crash never leaves a half-built role behind silently.
"""

from __future__ import annotations

import logging
from typing import Any

from app.audit.audited import AuditContext
from app.audit.query import AuditQueries
from app.aws.calls import action_of
from app.services import Services
from app.wizard.create import Step, plan_steps, undo_steps
from app.wizard.drafts import DraftStore
from app.wizard.service import Wizard

log = logging.getLogger(__name__)

ACTOR = "roledesk-recovery"
# Steps that only exist if this run created the role (the name was free when it was claimed).
_ON_THE_ROLE = ("create_role", "attach:", "inline")


def _started(step: Step, begun: set[tuple[str, str | None]]) -> bool:
    return (action_of(step.call), step.target) in begun


def _to_undo(steps: list[Step], begun: set[tuple[str, str | None]]) -> list[Step]:
    """Steps whose call may have happened: any step on a role this run created, and the
    instance-profile steps whose own call was begun."""
    role_created = bool(steps) and _started(steps[0], begun)
    return [
        s for s in steps if (role_created and s.key.startswith(_ON_THE_ROLE)) or _started(s, begun)
    ]


def settle_interrupted_runs(services: Services) -> list[str]:
    """Undo and close every draft left `creating`; returns their ids."""
    store = DraftStore(services.db)
    drafts = store.creating()
    if not drafts:
        return []
    wizard = Wizard(services)
    queries = AuditQueries(services.db)
    settled = []
    for draft in drafts:
        operation = draft.operation_id or ""
        events = queries.operation(operation) if operation else []
        begun = {
            (e.action, e.target) for e in events if e.kind == "intent" and e.outcome != "failed"
        }
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
        return undo_steps(calls, steps, skip_missing=True)
