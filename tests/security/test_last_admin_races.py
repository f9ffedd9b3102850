"""Issue 12, finding 3: two admins demoting or disabling each other at the same moment never
leave RoleDesk without an active admin, and the one who loses gets a clear refusal, not a
500 (real threads, each its own signed-in HTTP client, on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from app.audit.audited import AuditContext
from app.auth.permissions import Role
from tests.conftest import csrf_token_for

TRIALS = 6


def _active_admins(web_app) -> list[str]:
    users = web_app.state.auth.users.list()
    return [u.name for u in users if u.role is Role.ADMIN and not u.disabled]


def _each_changes_the_other(
    clients: list[TestClient], names: tuple[str, str], change: str
) -> list[tuple[int, str]]:
    tokens = [csrf_token_for(c) for c in clients]
    barrier = threading.Barrier(2)
    results: dict[int, tuple[int, str]] = {}

    def act(i: int) -> None:
        data = {"csrf_token": tokens[i]}
        if change == "role":
            data["role"] = "viewer"
        barrier.wait()
        try:
            response = clients[i].post(
                f"/users/{names[1 - i]}/{change}", data=data, follow_redirects=False
            )
        except Exception as exc:  # the test client re-raises what would be a 500
            results[i] = (500, repr(exc))
            return
        results[i] = (response.status_code, response.text)

    threads = [threading.Thread(target=act, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return list(results.values())


@pytest.mark.parametrize("change", ["role", "disable"])
def test_admins_changing_each_other_at_once_keep_one_admin(web_app, client_as, change):
    users = web_app.state.auth.users
    for trial in range(TRIALS):
        names = (f"ann{trial}", f"ben{trial}")
        clients = [client_as("admin", name) for name in names]
        for other in _active_admins(web_app):
            if other not in names:  # only these two admins are active in this trial
                users.set_disabled(AuditContext(actor="test"), other, True)
        results = _each_changes_the_other(clients, names, change)
        statuses = sorted(status for status, _ in results)
        assert len(statuses) == 2
        assert _active_admins(web_app), f"trial {trial}: no active admin left"
        # One change wins; the other is refused in words: by the last-admin rule (422), or,
        # when it arrives after the winner committed, because its sender is no longer an
        # admin (403) or was disabled and signed out (401).
        assert statuses.count(303) == 1, f"trial {trial}: {statuses}"
        assert set(statuses) - {303} <= {401, 403, 422}, f"trial {trial}: {statuses}"
        for status, text in results:
            if status == 422:
                assert "is the only active admin" in text
            if status == 403:
                assert "admin" in text
