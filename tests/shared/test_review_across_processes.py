"""The access review across processes (issue 16), on SQLite and PostgreSQL: the account scan
(its result and its progress) and the Access Advisor reports are stored in the database
(app.review.scan, app.review.last_accessed), so a scan made through one process is shown by
another without reading AWS, one process scans at a time, "Scan again" through any process
scans once for all, and a report asked for through one process is shown by the others and
after a restart. Each "process" is its own Services (engine, shared state, lists) on one
real database, over the real moto server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from app import migrate
from app.services import Services, build_services
from app.settings import Settings
from tests.security.aws_calls import AwsCalls


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    migrate.upgrade(url)
    return url


@pytest.fixture
def pair(shared_url: str, seeded: Services) -> Iterator[tuple[Services, Services]]:
    made = [
        build_services(Settings(database_url=shared_url), sandbox_endpoint=seeded.sandbox_endpoint)
        for _ in range(2)
    ]
    yield made[0], made[1]
    for services in made:
        services.db.dispose()


def counted(services: Services) -> AwsCalls:
    calls = AwsCalls()
    services.clients.hook_every_client("before-call", calls)
    return calls


def test_a_scan_through_one_process_is_shown_by_the_other_without_reading_aws(pair):
    a, b = pair
    b_calls = counted(b)
    assert b.access_scan.result is None and b.access_scan.is_stale()
    assert a.access_scan.start()
    # While a scans, b starts none of its own: it shows a's progress.
    assert b.access_scan.progress.running
    assert not b.access_scan.start()
    b.access_scan.ensure()
    a.access_scan.wait(120)
    assert not b.access_scan.progress.running
    scanned = b.access_scan.result
    assert scanned is not None and not b.access_scan.is_stale()
    held = a.access_scan.result
    assert held is not None
    assert set(scanned.roles) == set(held.roles) and scanned.roles
    for name, role in held.roles.items():
        assert scanned.roles[name].checked == role.checked, name
        assert scanned.roles[name].role.arn == role.role.arn
    assert scanned.static_kinds == held.static_kinds
    assert b_calls.count("GetAccountAuthorizationDetails") == 0


def test_scan_again_through_either_process_scans_once_for_all(pair):
    a, b = pair
    calls = [counted(a), counted(b)]
    a.access_scan.run_now()
    first = b.access_scan.result
    assert first is not None
    start = threading.Barrier(2)
    started: list[bool] = []

    def press(services: Services) -> None:
        start.wait()
        started.append(services.access_scan.start())

    threads = [threading.Thread(target=press, args=(s,)) for s in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(started) == [False, True]  # one scan, whichever process won
    for services in (a, b):
        services.access_scan.wait(120)
    assert sum(c.count("GetAccountAuthorizationDetails") for c in calls) == 2  # 1 + 1 page
    for services in (a, b):
        again = services.access_scan.result
        assert again is not None and again.finished_at > first.finished_at
        assert not services.access_scan.progress.running


def test_a_scan_stopped_by_its_process_no_longer_blocks_the_others(pair, monkeypatch):
    a, b = pair
    assert a.access_scan.start()
    a.access_scan.wait(120)
    # A "running" row whose process died (never written again) lapses after ALIVE.
    from app.review import scan as scan_module

    monkeypatch.setattr(scan_module, "ALIVE", scan_module.timedelta(seconds=0))
    assert b.access_scan.start()
    b.access_scan.wait(120)


def test_an_access_advisor_report_is_shown_by_every_process_and_after_a_restart(pair, shared_url):
    a, b = pair
    role = a.inventory.page().rows[0].role
    assert b.last_accessed.held(role.name).state == "none"
    asked = a.last_accessed.start(role.name, role.arn)
    # The sandbox does not implement Access Advisor: its answer is what is stored.
    assert asked.state == "unsupported"
    seen = b.last_accessed.held(role.name.upper())
    assert seen.state == "unsupported" and seen.error is not None
    assert seen.error.code == asked.error.code  # type: ignore[union-attr]
    restarted = build_services(
        Settings(database_url=shared_url), sandbox_endpoint=a.sandbox_endpoint
    )
    try:
        # Another role of the same account: the endpoint's answer holds for every role.
        other = restarted.inventory.page().rows[-1].role
        assert restarted.last_accessed.held(other.name).state == "unsupported"
        assert restarted.last_accessed.held(role.name).started_at == asked.started_at
    finally:
        restarted.db.dispose()
