"""The cross-account pair takes the wizard's case-insensitive name lock (app.shared.names),
per account: two processes making pairs named `Race-Pair` and `race-pair` in one account at
the same instant make one role there (the other run is refused before any AWS change), while
one name in two different accounts is made in both. Each "process" is its own Services
(engine, shared state) and hub on one real database (SQLite, PostgreSQL), driven from real
threads, over the sandbox organization (moto, unlike IAM, would accept both spellings)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app import migrate
from app.accounts.hub import AccountHub
from app.accounts.model import Account
from app.accounts.pair import Pair, pair_plan, run_pair
from app.audit.audited import AuditContext
from app.operations import progress
from app.operations.engine import Engine, RunResult
from app.services import Services, build_services
from tests.accounts.conftest import account, fresh_clients
from tests.accounts.test_pair import pair_for


@pytest.fixture(params=["sqlite", "postgres"])
def processes(
    request: pytest.FixtureRequest, org: Services, tmp_path: Path
) -> Iterator[list[tuple[Services, AccountHub]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'roledesk.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrate.upgrade(url)
    made = []
    for _ in range(2):
        services = build_services(
            org.settings.model_copy(update={"database_url": url}),
            sandbox_endpoint=org.sandbox_endpoint,
        )
        made.append((services, AccountHub(org.settings, fresh_clients(org), org.identity.account)))
    yield made
    for services, _ in made:
        services.db.dispose()


def run(services: Services, hub: AccountHub, pair: Pair) -> tuple[str, RunResult]:
    ctx = AuditContext(actor="alice")
    plan = pair_plan(hub, "alice", pair, "us-east-1")
    engine = Engine(services)
    engine.record_start(ctx, plan)
    return ctx.operation_id, run_pair(engine, ctx, pair, plan, hub, "alice")


def race(processes, pairs: list[Pair]) -> list[tuple[str, RunResult]]:  # type: ignore[no-untyped-def]
    start = threading.Barrier(len(pairs))

    def one(index: int) -> tuple[str, RunResult]:
        services, hub = processes[index]
        start.wait()
        return run(services, hub, pairs[index])

    with ThreadPoolExecutor(len(pairs)) as pool:
        return list(pool.map(one, range(len(pairs))))


def roles_like(hub: AccountHub, where: Account, name: str) -> list[str]:
    return [r.name for r in hub.iam(where, "alice").list_roles() if r.name.lower() == name.lower()]


def test_two_spellings_at_once_in_one_account_make_one_role(processes, members, request):
    hub = processes[0][1]
    dev, prod = account(hub, members[0]), account(hub, members[2])
    base = f"Race-Pair-{request.node.callspec.id}"
    pairs = [pair_for(hub, dev, prod, n, external_id="x-1") for n in (base, base.lower())]
    outcomes = race(processes, pairs)
    assert sorted(result.ok for _, result in outcomes) == [False, True]
    assert len(roles_like(hub, prod, base)) == 1
    refused_id, refused = next(o for o in outcomes if not o[1].ok)
    first = refused.first_error
    assert first is not None and first[1].code == "EntityAlreadyExists"
    # Refused before any AWS change: the run is recorded as finished, no step called.
    recorded = progress.load(processes[0][0].db, refused_id)
    assert recorded is not None and recorded.finished and not recorded.ok
    assert [s.status for s in recorded.steps] == ["refused", "not_started"]
    assert "already exists" in recorded.steps[0].refusal[1]
    made = next(pair for pair, (_, result) in zip(pairs, outcomes, strict=True) if result.ok)
    held = hub.iam(dev, "alice").list_role_policy_names("dev-deploy")
    assert [p for p in held if p.lower() == made.policy_name.lower()] == [made.policy_name]


def test_one_name_in_two_accounts_is_made_in_both(processes, members, request):
    hub = processes[0][1]
    dev, staging, prod = (account(hub, m) for m in members)
    name = f"Both-Pair-{request.node.callspec.id}"
    outcomes = race(
        processes,
        [
            pair_for(hub, dev, prod, name, external_id="x-2"),
            pair_for(hub, dev, staging, name, external_id="x-2"),
        ],
    )
    assert [result.ok for _, result in outcomes] == [True, True]
    assert roles_like(hub, prod, name) == [name] and roles_like(hub, staging, name) == [name]
