"""A wizard run cut short by a stop of RoleDesk is rolled back at the next start, through the
audited path, and its draft is marked failed: no half-built role is left behind silently."""

from __future__ import annotations

import pytest

from app.audit.audited import AuditedSequence
from app.audit.reconcile import reconcile_at_start
from app.operations.engine import step_change
from app.wizard.create import RoleCreator, plan_steps
from app.wizard.drafts import DraftStore
from app.wizard.interrupted import settle_interrupted_runs
from tests.web.test_wizard_create import (
    create,
    details,
    ec2_draft,
    entries_of,
    profile_exists,
    role_exists,
)


@pytest.mark.parametrize("steps_done", [1, 3, 5])
def test_interrupted_run_is_rolled_back_at_start(client, seeded, monkeypatch, steps_done):
    def run_then_die(self, plan, ctx, finish=None, review=None):
        # Stands for the process dying in the middle of the run: no `with`, so the outcome of
        # the last call is never written and that intent is left pending for reconciliation,
        # and neither the run's finish record nor the draft's result is ever written.
        calls = AuditedSequence(self._services.audited, ctx)
        for step in plan_steps(self._services, plan)[:steps_done]:
            calls.call(step_change(step), step.call, **step.kwargs)

    monkeypatch.setattr(RoleCreator, "run", run_then_die)
    draft_id = ec2_draft(client)
    # The run stops without a result, so the done page would show its progress for ever.
    create(client, draft_id, details("cut-short"), wait=False)
    store = DraftStore(seeded.db)
    assert seeded.runs.wait(store.get(draft_id).operation_id)
    assert store.get(draft_id).status == "creating"
    assert role_exists(seeded, "cut-short")

    monkeypatch.undo()  # the "next start" runs the real code
    reconcile_at_start(seeded)
    assert settle_interrupted_runs(seeded) == [draft_id]

    assert not role_exists(seeded, "cut-short")
    assert not profile_exists(seeded, "cut-short")
    draft = store.get(draft_id)
    assert draft.status == "failed"
    assert draft.failure["code"] == "Interrupted"
    assert draft.failure["rolled_back"][-1] == "Delete the role"
    assert draft.failure["rollback_errors"] == []
    # The undo calls are in the audit log under the run's own operation id.
    undo = [e for e in entries_of(seeded, draft.operation_id) if e[1] == "iam:DeleteRole"]
    assert ("intent", "iam:DeleteRole", "pending") in undo
    assert ("outcome", "iam:DeleteRole", "succeeded") in undo
    # The done page says what happened; the draft can be tried again.
    page = client.get(f"/create-role/{draft_id}/done")
    assert "rolled back" in page.text
    assert settle_interrupted_runs(seeded) == []


def test_nothing_to_settle_without_interrupted_runs(seeded):
    assert settle_interrupted_runs(seeded) == []
