"""The access review's re-check of a role RoleDesk changed (GetRole, its policies) runs beside
the change, not inside it: a create does not wait for it between CreateRole and the attaches
(issue 15: with a stored scan, the re-reads tripled a create's time on real AWS), and an
operation run's changes are re-checked once, after its last call. The scan's readers still
see the change once its re-check is done, and one role's changes made while its re-check
waits are read once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from app.audit.audited import AuditContext
from app.services import Services
from app.wizard.create import RoleCreator
from tests.shared.test_name_claims import plan


def _hold(services: Services, operation: str) -> tuple[threading.Event, Counter[str]]:
    """Hold every `operation` call of these services until the event is set; count calls."""
    release = threading.Event()
    seen: Counter[str] = Counter()

    def held(model: Any = None, **_: Any) -> None:
        seen[model.name] += 1
        if model.name == operation:
            assert release.wait(60), "never released"

    services.clients.hook_every_client("before-call.iam", held)
    return release, seen


def _until(happened: Callable[[], bool], seconds: float = 30) -> None:
    """Wait until `happened()` (the re-check runs on its own thread), at most `seconds`."""
    deadline = time.monotonic() + seconds
    while not happened() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_create_does_not_wait_for_the_review_recheck(services: Services) -> None:
    scan = services.access_scan
    scan.run_now()
    # Only the re-check lists a role's attached policies: holding that call holds it.
    release, seen = _hold(services, "ListAttachedRolePolicies")
    finished: list[bool] = []
    creating = threading.Thread(
        target=lambda: finished.append(
            RoleCreator(services).run(plan("Recheck-Beside"), AuditContext(actor="t")).ok
        )
    )
    try:
        creating.start()
        creating.join(60)
        assert finished == [True]  # the create is over...
        _until(lambda: seen["ListAttachedRolePolicies"] > 0)
        # ...and its re-check was started, and is held.
        assert seen["ListAttachedRolePolicies"] == 1
    finally:
        release.set()
    result = scan.result  # waits for the re-checks queued so far
    assert result is not None
    scanned = result.roles["recheck-beside"]
    assert [p.name for p in scanned.attached] == ["ReadOnlyAccess"]


def test_a_run_rechecks_its_role_once_after_its_last_call(services: Services) -> None:
    scan = services.access_scan
    scan.run_now()
    order: list[str] = []
    services.clients.hook_every_client(
        "before-call.iam", lambda model=None, **_: order.append(model.name)
    )
    assert RoleCreator(services).run(plan("Recheck-After"), AuditContext(actor="t")).ok
    scan.settle()
    # CreateRole, the attach and the profile changed the role: one re-read, after them all.
    assert order.count("ListAttachedRolePolicies") == 1, order
    assert order.index("ListAttachedRolePolicies") > order.index("AddRoleToInstanceProfile")
    assert "recheck-after" in (scan.result.roles if scan.result else {})


def test_changes_to_one_role_while_its_recheck_waits_are_read_once(services: Services) -> None:
    scan = services.access_scan
    scan.run_now()
    account = services.identity.account
    target = f"arn:aws:iam::{account}:role/Recheck-Once"
    assert RoleCreator(services).run(plan("Recheck-Once"), AuditContext(actor="t")).ok
    scan.settle()
    release, seen = _hold(services, "ListAttachedRolePolicies")
    try:
        scan.on_change("iam:AttachRolePolicy", target)  # its re-check starts, and is held
        _until(lambda: seen["ListAttachedRolePolicies"] > 0)
        for _ in range(5):  # all while the first is held: one more re-read covers them
            scan.on_change("iam:DetachRolePolicy", target)
            scan.on_change("iam:PutRolePolicy", target)
    finally:
        release.set()
    scan.settle()
    assert seen["GetRole"] == 2, seen
    assert seen["ListAttachedRolePolicies"] == 2, seen
