"""Operators limited to some accounts (issue 17): refused (403, no AWS call) on every
changing route of every other account, on the pages of other accounts too, and in the
cross-account pair when either account is not theirs; working as before in their own.
Admins set the limit on the Users page (checked against the account list) and with
`roledesk users limit`; each change is in the audit history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.accounts.hub import AccountHub
from app.accounts.urls import GLOBAL
from app.audit.audited import AuditContext
from app.auth.permissions import Role, is_public, required_role
from app.cli import main
from app.main import create_app
from app.models import AuditEvent
from app.services import Services
from tests.accounts.conftest import fresh_clients, own_database
from tests.conftest import add_user, csrf_token_for, sign_in
from tests.web.test_auth_route_walk import concrete, endpoints

DEV, STAGING, PROD = 0, 1, 2
REFUSED = "Your RoleDesk user may work only in"


@pytest.fixture(scope="module")
def org(
    org_seeded: tuple[Services, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    with own_database(org_seeded[0], tmp_path_factory.mktemp("limits")) as built:
        yield built


class Calls:
    """Every AWS call the app's clients make."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self, model: Any = None, **_: Any) -> None:
        self.made.append(getattr(model, "name", "?"))


@pytest.fixture(scope="module")
def app_calls(org: Services) -> tuple[Any, Calls]:
    app = create_app(org)
    hub = AccountHub(org.settings, fresh_clients(org), org.identity.account)
    app.state.account_hub = hub
    calls = Calls()
    hub.hub_clients.hook_every_client("before-call", calls)  # reaches every member account
    org.clients.hook_every_client("before-call", calls)  # the hub account's own
    return app, calls


@pytest.fixture(scope="module")
def app(app_calls: tuple[Any, Calls]) -> Any:
    return app_calls[0]


def client_for(app: Any, name: str, role: str) -> TestClient:
    if app.state.auth.users.get(name) is None:
        add_user(app, name, role)
    client = TestClient(app)
    client.__enter__()
    assert sign_in(client, name).status_code == 303
    return client


@pytest.fixture(scope="module")
def limited(app: Any, members: list[str]) -> Iterator[TestClient]:
    """An operator limited to the Development account."""
    client = client_for(app, "dev-operator", "operator")
    app.state.auth.users.set_accounts(AuditContext(actor="test"), "dev-operator", (members[DEV],))
    yield client
    client.__exit__(None, None, None)


def post(client: TestClient, url: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(
        url,
        data={**(data or {}), "csrf_token": csrf_token_for(client)},
        follow_redirects=False,
    )


def test_every_changing_route_in_another_account_is_refused_without_aws_calls(
    app_calls: tuple[Any, Calls], limited: TestClient, members: list[str]
) -> None:
    app, calls = app_calls
    walked = 0
    for route, method in endpoints(app):
        if method == "GET" or is_public(route) or required_role(route, method) > Role.OPERATOR:
            continue  # reading is below; admins' routes refuse operators anyway
        # A member account, and the hub (whose URLs have no prefix); pages of no account
        # (the cross-account pair) name theirs in the form: tested below.
        in_no_account = any(route.path.startswith(g + "/") for g in GLOBAL)
        for base in (f"/accounts/{members[PROD]}",) + (() if in_no_account else ("",)):
            before = len(calls.made)
            url = base + concrete(route.path, {"name": "web-app-ec2", "draft_id": "1"})
            response = limited.request(
                method,
                url,
                headers={"X-CSRF-Token": csrf_token_for(limited)},
                data={},
                follow_redirects=False,
            )
            assert response.status_code == 403, (method, url, response.text[:300])
            assert REFUSED in response.text and members[DEV] in response.text, url
            assert calls.made[before:] == [], (method, url)
            walked += 1
    assert walked >= 40  # every changing route of the app, twice


def test_pages_of_other_accounts_are_refused_too(limited: TestClient, members: list[str]) -> None:
    for url in (
        f"/accounts/{members[PROD]}/roles",
        "/roles",
        f"/accounts/{members[STAGING]}/audit",
    ):
        response = limited.get(url)
        assert response.status_code == 403, url
        assert "not in account" in response.text
    switch = limited.get(f"/accounts/switch?account={members[PROD]}", follow_redirects=False)
    assert switch.status_code == 403


def test_own_account_works_and_shows_only_own_accounts(
    app: Any, limited: TestClient, members: list[str]
) -> None:
    dev = f"/accounts/{members[DEV]}"
    page = limited.get(f"{dev}/roles")
    assert page.status_code == 200
    options = BeautifulSoup(page.text, "html.parser").select("#switch-account option")
    assert {o["value"] for o in options} <= {members[DEV]}  # the switcher: only theirs
    assert post(limited, f"{dev}/roles/refresh").status_code in (200, 303)
    listed = limited.get("/accounts").text
    assert members[DEV] in listed and members[PROD] not in listed
    search = limited.get("/all-accounts/roles?q=")
    assert search.status_code == 200
    assert members[DEV] in search.text and members[PROD] not in search.text
    pair_form = limited.get("/accounts/pairs/new")
    assert pair_form.status_code == 200
    assert members[DEV] in pair_form.text and members[PROD] not in pair_form.text
    # An unlimited operator still sees every account.
    other = client_for(app, "any-operator", "operator")
    assert members[PROD] in other.get("/all-accounts/roles?q=").text


def test_pair_refused_when_either_account_is_not_theirs(
    app_calls: tuple[Any, Calls], limited: TestClient, members: list[str]
) -> None:
    _, calls = app_calls
    form = {
        "source_account": members[DEV],
        "source_role": "ci-deployer",
        "target_account": members[PROD],
        "role_name": "limited-pair",
        "condition": "external_id",
        "external_id": "limited-pair-1234",
    }
    for url in ("/accounts/pairs/review", "/accounts/pairs"):
        for data in (
            form,
            {**form, "source_account": members[PROD], "target_account": members[DEV]},
        ):
            before = len(calls.made)
            response = post(limited, url, data)
            assert response.status_code == 403, (url, response.text[:300])
            assert f"not in account {members[PROD]}" in response.text
            assert calls.made[before:] == []


def test_users_page_sets_the_limit_against_the_account_list(
    app: Any, org: Services, members: list[str]
) -> None:
    admin = client_for(app, "limits-admin", "admin")
    add_user(app, "page-viewer", "viewer")
    page = BeautifulSoup(admin.get("/users").text, "html.parser")
    row = next(tr for tr in page.select("#user-rows tr") if tr.td.text == "page-viewer")
    boxes = row.select("input[name=accounts]")
    assert {b["value"] for b in boxes} >= set(members)
    for box in boxes:  # every checkbox has a visible label
        assert page.select_one(f"label[for={box['id']}]") is not None
    done = post(
        admin, "/users/page-viewer/accounts", {"accounts": [members[DEV], members[STAGING]]}
    )
    assert done.status_code == 303
    assert app.state.auth.users.get("page-viewer").accounts == tuple(sorted(members[:2]))
    unknown = post(admin, "/users/page-viewer/accounts", {"accounts": ["999999999999"]})
    assert unknown.status_code == 422
    error = BeautifulSoup(unknown.text, "html.parser").select_one("small.field-error")
    assert error is not None and "999999999999" in error.text
    assert app.state.auth.users.get("page-viewer").accounts == tuple(sorted(members[:2]))
    admin_limit = post(admin, "/users/limits-admin/accounts", {"accounts": [members[DEV]]})
    assert admin_limit.status_code == 422 and "admins work in every account" in admin_limit.text
    assert post(admin, "/users/page-viewer/accounts", {}).status_code == 303  # none: every
    assert app.state.auth.users.get("page-viewer").accounts == ()
    with org.db.session() as s:
        events = list(
            s.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "roledesk:SetUserAccounts",
                    AuditEvent.target == "roledesk:user/page-viewer",
                )
            )
        )
    assert [e.actor for e in events] == ["limits-admin", "limits-admin"]
    assert len({e.operation_id for e in events}) == 2


def test_cli_limit(org: Services, monkeypatch: pytest.MonkeyPatch, members: list[str]) -> None:
    monkeypatch.setenv("ROLEDESK_DATABASE_URL", org.settings.database_url)
    # The sandbox of the running RoleDesk: the shell reads the account list from it.
    assert org.sandbox_endpoint
    monkeypatch.setenv("ROLEDESK_AWS_ENDPOINT_URL", org.sandbox_endpoint)
    from app.auth.users import UsersService

    users = UsersService(org.db, org.audit_log)
    users.add(AuditContext(actor="test"), "cli-operator", Role.OPERATOR, "cli kestrel harbour 77")
    runner = CliRunner()
    ids = f"{members[PROD]}, {members[DEV]}"
    done = runner.invoke(main, ["users", "limit", "cli-operator", "--accounts", ids])
    assert done.exit_code == 0, done.output
    assert users.get("cli-operator").accounts == tuple(sorted((members[DEV], members[PROD])))
    listed = runner.invoke(main, ["users", "list"]).output
    assert (
        f"cli-operator\toperator\tactive\t{','.join(sorted((members[DEV], members[PROD])))}"
        in listed
    )
    bad = runner.invoke(main, ["users", "limit", "cli-operator", "--accounts", "12345"])
    assert bad.exit_code != 0 and "12 digits" in bad.output
    # A well-formed id of no account RoleDesk manages: refused, named, nothing stored.
    unknown = runner.invoke(
        main, ["users", "limit", "cli-operator", "--accounts", f"{members[DEV]},999999999999"]
    )
    assert unknown.exit_code != 0
    assert "Not an account RoleDesk manages: 999999999999." in unknown.output
    assert members[DEV] not in unknown.output.split("Nothing was")[0]
    assert users.get("cli-operator").accounts == tuple(sorted((members[DEV], members[PROD])))
    # Without the sandbox's endpoint the shell cannot see its accounts: it says so.
    monkeypatch.delenv("ROLEDESK_AWS_ENDPOINT_URL")
    blind = runner.invoke(main, ["users", "limit", "cli-operator", "--accounts", members[DEV]])
    assert blind.exit_code != 0 and "ROLEDESK_AWS_ENDPOINT_URL" in blind.output
    assert users.get("cli-operator").accounts == tuple(sorted((members[DEV], members[PROD])))
    monkeypatch.setenv("ROLEDESK_AWS_ENDPOINT_URL", org.sandbox_endpoint)
    neither = runner.invoke(main, ["users", "limit", "cli-operator"])
    assert neither.exit_code != 0 and "--all" in neither.output
    every = runner.invoke(main, ["users", "limit", "cli-operator", "--all"])
    assert every.exit_code == 0 and "every account" in every.output
    assert users.get("cli-operator").accounts == ()
    with org.db.session() as s:
        actors = s.scalars(
            select(AuditEvent.actor).where(
                AuditEvent.action == "roledesk:SetUserAccounts",
                AuditEvent.target == "roledesk:user/cli-operator",
            )
        ).all()
    assert len(actors) == 2 and all(a.startswith("cli:") for a in actors)


def test_user_without_the_hub_starts_in_their_first_account(app: Any, members: list[str]) -> None:
    """Limited to Staging and Production (not the hub): sign-in, `/` and the header's links
    lead to their accounts, never to a 403 page of the hub's."""
    add_user(app, "no-hub-viewer", "viewer")
    app.state.auth.users.set_accounts(
        AuditContext(actor="test"), "no-hub-viewer", (members[STAGING], members[PROD])
    )
    # The switcher's order is by name: Production comes before Staging.
    first = f"/accounts/{members[PROD]}"
    with TestClient(app) as client:
        landed = sign_in(client, "no-hub-viewer")  # asks for /roles, the hub's
        assert landed.status_code == 303 and landed.headers["location"] == f"{first}/roles"
        assert client.get(landed.headers["location"]).status_code == 200
        home = client.get("/", follow_redirects=False)
        assert home.headers["location"] == f"{first}/roles"
        # A page of one of their accounts asked for by name is kept.
        again = sign_in(client, "no-hub-viewer", next_=f"/accounts/{members[STAGING]}/audit")
        assert again.headers["location"] == f"/accounts/{members[STAGING]}/audit"
        assert sign_in(client, "no-hub-viewer", next_="/audit").headers["location"] == (
            f"{first}/roles"
        )
        # On pages of no account, and on the hub's 403 page, the header leads to theirs.
        for url, status in (("/accounts", 200), ("/all-accounts/roles", 200), ("/roles", 403)):
            page = client.get(url)
            assert page.status_code == status, url
            soup = BeautifulSoup(page.text, "html.parser")
            links = [a["href"] for a in soup.select("nav[aria-label=Main] a")]
            links.append(soup.select_one("a.brand")["href"])
            for href in links:
                assert href.startswith((first + "/", *GLOBAL)), (url, href)
                if not href.startswith(GLOBAL):
                    assert client.get(href).status_code == 200, href
