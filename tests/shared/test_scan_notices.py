"""The access review's scan holds a role created through another process: the process that
made the change re-read it once and stored it (app.review.scan, through app.shared.state);
two Services (engine, shared state, lists, scan) on one database and one sandbox, as two
workers have."""

from __future__ import annotations

import time

from app.audit.audited import AuditContext
from app.services import Services, build_services
from app.wizard.create import RoleCreator
from tests.shared.test_name_claims import plan


def held_by_scan(services: Services, name: str, timeout: float = 15) -> bool:
    """Whether the scan holds `name`, asked until it does (the re-check runs on a thread)."""
    deadline = time.monotonic() + timeout
    while True:
        services.catch_up()  # what the next request (or the PostgreSQL listener) does
        result = services.access_scan.result
        if result is not None and name.lower() in result.roles:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_a_role_created_through_one_process_is_reviewed_by_another(services, settings, sandbox):
    other = build_services(settings, sandbox_endpoint=sandbox.endpoint_url)
    try:
        for process in (services, other):
            process.inventory.page()
            process.access_scan.run_now()
        assert RoleCreator(services).run(plan("Scan-Shared"), AuditContext(actor="t")).ok
        assert held_by_scan(other, "Scan-Shared")
        scanned = other.access_scan.result.roles["scan-shared"]  # type: ignore[union-attr]
        assert scanned.name == "Scan-Shared"
        assert [p.name for p in scanned.attached] == ["ReadOnlyAccess"]
    finally:
        other.db.dispose()
