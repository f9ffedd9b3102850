"""Issue 12, finding 6 (GetRole amplification): one request to the roles list's Last activity
fragment made RoleDesk call GetRole once per name given (64 and more). Now only roles the list
knows are looked up, at most one page's worth per request, and each user has a budget of
fresh lookups; the budget holds under concurrent requests (real threads)."""

from __future__ import annotations

import threading

import pytest

from app import migrate
from app.roles.lookup_budget import LookupBudget

ROLES_KNOWN = 16  # the seeded sandbox's roles


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The budget is held in memory: SQLite only."""
    migrate.upgrade(sqlite_url)
    return sqlite_url


def _names(seeded) -> list[str]:
    return sorted(r.name for r in seeded.iam.list_roles())


def test_one_request_cannot_fan_out_to_names_the_list_does_not_know(client_as, seeded, aws_calls):
    viewer = client_as("viewer")
    invented = [f"no-such-role-{i}" for i in range(64)]
    response = viewer.get(
        "/roles/last-activity", params={"name": invented}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert aws_calls.count("GetRole") == 0
    known = _names(seeded)
    assert len(known) == ROLES_KNOWN
    viewer.get("/roles/last-activity", params={"name": known * 4})
    assert aws_calls.count("GetRole") == ROLES_KNOWN  # each role once, however often named
    viewer.get("/roles/last-activity", params={"name": known})
    assert aws_calls.count("GetRole") == ROLES_KNOWN  # remembered


def test_each_user_has_a_budget_of_fresh_lookups(web_app, client_as, seeded, aws_calls):
    web_app.state.lookup_budget = LookupBudget(per_user=5)
    known = _names(seeded)
    viewer = client_as("viewer")
    first = viewer.get("/roles/last-activity", params={"name": known})
    assert aws_calls.count("GetRole") == 5
    assert first.text.count("Not loaded") == ROLES_KNOWN - 5
    viewer.get("/roles/last-activity", params={"name": known})
    viewer.get("/roles", params={"activity": "1"})
    assert aws_calls.count("GetRole") == 5  # spent; the remembered five need no call
    other = client_as("operator")
    other.get("/roles/last-activity", params={"name": known})
    assert aws_calls.count("GetRole") == 10  # another user's own budget


def test_the_budget_holds_under_concurrent_requests():
    budget = LookupBudget(per_user=50, window=3600)
    granted: list[int] = []
    barrier = threading.Barrier(20)

    def ask() -> None:
        barrier.wait()
        granted.append(budget.take("viewer", 10))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 50
    assert budget.take("someone-else", 10) == 10


def test_the_budget_refills_after_its_window():
    now = [0.0]
    budget = LookupBudget(per_user=3, window=60, clock=lambda: now[0])
    assert budget.take("v", 5) == 3 and budget.take("v", 1) == 0
    now[0] = 61
    assert budget.take("v", 5) == 3
