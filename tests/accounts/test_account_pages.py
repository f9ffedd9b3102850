"""Pages in a member account over HTTP (issue 17): `/accounts/<id>/...` answers with that
account's roles, instances and wizard, every link stays in the account, the switcher moves
between accounts without JavaScript, and an account whose role cannot be assumed is shown
unavailable with AWS's error while the others keep working.

Checked against the sandbox organization with plain boto3: a role made through a member
account's wizard is in that account and in no other."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.accounts.hub import AccountHub
from app.main import create_app
from app.models import AuditEvent
from app.roles.inventory import INVENTORY as ROLES
from app.sandbox_seed import SANDBOX_IMAGE_ID
from app.services import Services
from tests.accounts.conftest import Refuse, account, fresh_clients, own_database
from tests.conftest import csrf_token_for, signed_in
from tests.web.test_wizard_flow import finish_create

DEV, STAGING, PROD = 0, 1, 2


@pytest.fixture(scope="module")
def org(
    org_seeded: tuple[Services, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    """The package's organization, with a database of this module's own: other modules
    count the seed's audit records exactly."""
    with own_database(org_seeded[0], tmp_path_factory.mktemp("pages")) as built:
        yield built


@pytest.fixture(scope="module")
def app_hub(org: Services) -> tuple[Any, AccountHub]:
    app = create_app(org)
    hub = AccountHub(org.settings, fresh_clients(org), org.identity.account)
    app.state.account_hub = hub  # clients of its own: hooks stay in this module
    hub.hub_clients.hook_every_client("before-call.sts.AssumeRole", SESSIONS)
    return app, hub


class Sessions:
    """The RoleSessionName of every AssumeRole the module's pages made."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.names.append(str(params.get("body", {}).get("RoleSessionName")))


SESSIONS = Sessions()


@pytest.fixture(scope="module")
def operator(app_hub: tuple[Any, AccountHub]) -> Iterator[TestClient]:
    with signed_in(app_hub[0], "olivia", "operator") as client:
        yield client


def soup(response: Any) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def searched(client: TestClient, **params: str) -> Any:
    """GET /all-accounts/roles, then "Check progress" while the lists load (no JavaScript),
    until the results show."""
    response = client.get("/all-accounts/roles", params=params)
    for _ in range(60):
        check = soup(response).select_one("#all-roles-check")
        if check is None:
            return response
        response = client.get(check["href"])
    raise AssertionError("the roles of every account never finished loading")


def boto_in(services: Services, account_id: str, service: str, region: str = "us-east-1") -> Any:
    """A plain boto3 client acting in `account_id` (the spoke role, assumed by hand)."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    common = {"endpoint_url": services.sandbox_endpoint, "region_name": region}
    if account_id == services.identity.account:
        return boto3.client(service, **common, **keys)  # type: ignore[call-overload]
    sts = boto3.client("sts", **common, **keys)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{services.settings.member_role_name}",
        RoleSessionName="test-check",
    )["Credentials"]
    return boto3.client(  # type: ignore[call-overload]
        service,
        **common,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def role_names(services: Services, account_id: str) -> set[str]:
    iam = boto_in(services, account_id, "iam")
    return {
        r["RoleName"] for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]
    }


def local_links(page: BeautifulSoup) -> list[str]:
    """Every RoleDesk address the page links, posts or fetches (static files left out)."""
    found = []
    for element in page.find_all(True):
        for attribute in ("href", "action", "hx-get", "hx-post"):
            value = element.get(attribute)
            if isinstance(value, str) and value.startswith("/") and not value.startswith("/static"):
                found.append(value)
    return found


def test_a_member_accounts_roles_list_shows_its_roles_and_keeps_every_link_in_it(
    operator: TestClient, members: list[str], org: Services
):
    dev = members[DEV]
    response = operator.get(f"/accounts/{dev}/roles")
    assert response.status_code == 200
    page = soup(response)
    names = {a.get_text(strip=True) for a in page.select("#role-results a[href*='/roles/']")}
    assert names == role_names(org, dev)
    assert "dev-deploy" in names and "staging-deploy" not in names
    assert f"Development ({dev})" in page.title.get_text()
    # The switcher (this operator may work in several accounts) shows the current one.
    assert page.select_one("#switch-account option[selected]").get_text() == f"Development ({dev})"
    for link in local_links(page):
        assert link.startswith(
            (f"/accounts/{dev}/", "/accounts", "/all-accounts", "/users", "/sign-out")
        ), link
    role_page = operator.get(f"/accounts/{dev}/roles/dev-deploy")
    assert role_page.status_code == 200
    assert f"arn:aws:iam::{dev}:role/dev-deploy" in role_page.text
    # The hub's pages keep today's addresses and roles.
    hub_page = soup(operator.get("/roles"))
    hub_names = {
        a.get_text(strip=True) for a in hub_page.select("#role-results a[href*='/roles/']")
    }
    assert "dev-deploy" not in hub_names
    assert hub_page.select_one(".brand")["href"] == "/roles"


def test_the_switcher_is_a_plain_form_that_keeps_the_section(
    operator: TestClient, members: list[str], org: Services
):
    page = soup(operator.get("/instances"))
    form = page.select_one("form.account-switcher")
    assert form["method"] == "get" and form["action"] == "/accounts/switch"
    select_ = form.select_one("select#switch-account")
    assert form.select_one("label[for='switch-account']").get_text(strip=True)
    offered = [o["value"] for o in select_.select("option")]  # the hub, then by name
    assert offered == [org.identity.account, members[DEV], members[PROD], members[STAGING]]
    assert select_.select_one("option[selected]")["value"] == org.identity.account
    moved = operator.get(
        "/accounts/switch",
        params={"account": members[STAGING], "page": "/roles/web-app-ec2"},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/accounts/{members[STAGING]}/roles"
    back = operator.get(
        "/accounts/switch",
        params={"account": org.identity.account, "page": "/instances"},
        follow_redirects=False,
    )
    assert back.headers["location"] == "/instances"
    unknown = operator.get("/accounts/switch", params={"account": "999999999999"})
    assert unknown.status_code == 404
    assert operator.get("/accounts/999999999999/roles").status_code == 404
    # Asked by htmx: the message goes to the page's alert area, as every error page's does.
    fragment = operator.get("/accounts/999999999999/roles", headers={"HX-Request": "true"})
    assert fragment.status_code == 404
    assert fragment.headers["HX-Retarget"] == "#alerts"
    assert "No such account" in fragment.text
    odd = operator.get("/accounts/switch", params={"account": "<b>"}, follow_redirects=False)
    assert odd.headers["location"] == "/accounts"


def test_ec2_per_member_account(operator: TestClient, members: list[str]):
    prod = members[PROD]
    response = operator.get(f"/accounts/{prod}/instances")
    assert response.status_code == 200
    text = soup(response).select_one("#instance-results").get_text(" ")
    assert "prod-app-1" in text and "prod-worker" in text
    assert "dev-app-1" not in text and "bastion" not in text


def test_ec2_per_member_account_and_region(operator: TestClient, members: list[str], org: Services):
    """Another region of a member account lists that region's instances of that account."""
    prod = members[PROD]
    eu = boto_in(org, prod, "ec2", "eu-west-1")
    made = eu.run_instances(
        ImageId=SANDBOX_IMAGE_ID,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "prod-eu-1"}]}
        ],
    )["Instances"][0]["InstanceId"]
    try:
        europe = operator.get(f"/accounts/{prod}/instances", params={"region": "eu-west-1"})
        assert europe.status_code == 200
        text = soup(europe).select_one("#instance-results").get_text(" ")
        assert "prod-eu-1" in text and "prod-app-1" not in text
        for other in (f"/accounts/{prod}/instances", "/instances?region=eu-west-1"):
            # The member's default region, and the hub's eu-west-1: not there.
            listed = soup(operator.get(other)).select_one("#instance-results").get_text(" ")
            assert "prod-eu-1" not in listed, other
    finally:
        eu.terminate_instances(InstanceIds=[made])


def post(client: TestClient, url: str, data: dict[str, str]) -> Any:
    return client.post(
        url, data={"csrf_token": csrf_token_for(client), **data}, follow_redirects=False
    )


def test_the_wizard_in_a_member_account_creates_the_role_there_only(
    app_hub: tuple[Any, AccountHub], operator: TestClient, members: list[str], org: Services
):
    dev = members[DEV]
    base = f"/accounts/{dev}/create-role"
    started = post(
        operator,
        f"{base}/new/trust",
        {"entity_type": "service", "service": "lambda.amazonaws.com", "nav": "preview"},
    )
    assert started.status_code == 303
    assert started.headers["location"].startswith(f"{base}/")
    draft = started.headers["location"].split("/")[4]
    nxt = post(
        operator,
        f"{base}/{draft}/trust",
        {"entity_type": "service", "service": "lambda.amazonaws.com", "nav": "next"},
    )
    assert nxt.headers["location"] == f"{base}/{draft}/permissions"
    # With htmx the next step comes in the same response: the address it puts in the
    # browser's history stays in the member account (it used to lose the prefix).
    htmx = {"HX-Request": "true", "HX-Target": "wizard-step"}
    swapped = operator.post(
        f"{base}/{draft}/trust",
        data={
            "csrf_token": csrf_token_for(operator),
            "entity_type": "service",
            "service": "lambda.amazonaws.com",
            "nav": "next",
        },
        headers=htmx,
    )
    assert swapped.headers["HX-Push-Url"] == f"{base}/{draft}/permissions"
    added = post(
        operator,
        f"{base}/{draft}/permissions",
        {"add": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"},
    )
    assert added.status_code == 303, added.text[:300]
    details = {"name": "dev-made-here", "path": "/", "description": "", "max_session_hours": "1"}
    review = soup(operator.get(f"{base}/{draft}/review"))
    assert all(
        link.startswith(f"/accounts/{dev}/")
        or link.startswith(("/accounts", "/all-accounts", "/users", "/sign-out"))
        for link in local_links(review)
    )
    more = operator.post(
        f"{base}/{draft}/review",
        data={"csrf_token": csrf_token_for(operator), **details, "nav": "add_tag", "more": "1"},
        headers=htmx,
    )
    assert more.headers["HX-Push-Url"] == f"{base}/{draft}/review?more=2"
    created = post(operator, f"{base}/{draft}/create", details)
    assert created.status_code == 303, created.text[:500]
    assert created.headers["location"] == f"{base}/{draft}/done"
    done = soup(finish_create(operator, created.headers["location"]))
    assert done.select_one("#role-arn").get_text() == f"arn:aws:iam::{dev}:role/dev-made-here"
    assert "dev-made-here" in role_names(org, dev)
    for elsewhere in (org.identity.account, members[STAGING], members[PROD]):
        assert "dev-made-here" not in role_names(org, elsewhere)
    iam = boto_in(org, dev, "iam")
    attached = iam.list_attached_role_policies(RoleName="dev-made-here")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
    trust = iam.get_role(RoleName="dev-made-here")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    with org.db.session() as session:
        accounts = set(
            session.scalars(
                select(AuditEvent.account_id).where(
                    AuditEvent.target.endswith(":role/dev-made-here")
                )
            )
        )
    assert accounts == {dev}  # every call of the run, recorded with the member's id
    # The new role is in the member account's roles list at once.
    listed = soup(operator.get(f"/accounts/{dev}/roles", params={"q": "dev-made-here"}))
    assert listed.select_one(f"a[href='/accounts/{dev}/roles/dev-made-here']") is not None
    # Every AssumeRole the module's pages made went out as the RoleDesk user.
    assert SESSIONS.names and set(SESSIONS.names) == {"roledesk-olivia"}
    # The organization is the package's: other modules count the seeded roles exactly.
    iam.detach_role_policy(
        RoleName="dev-made-here", PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    )
    iam.delete_role(RoleName="dev-made-here")


def test_an_account_whose_role_cannot_be_assumed_is_unavailable_and_others_work(
    org: Services, members: list[str]
):
    app = create_app(org)
    hub = AccountHub(org.settings, fresh_clients(org), org.identity.account)
    app.state.account_hub = hub
    staging = account(hub, members[STAGING])
    hub.hub_clients.hook_every_client(
        "before-call.sts.AssumeRole", Refuse({"RoleArn": staging.role_arn})
    )
    with signed_in(app, "vera", "viewer") as viewer:
        refused = viewer.get(f"/accounts/{staging.account_id}/roles")
        assert refused.status_code == 503
        page = soup(refused)
        assert f"Staging ({staging.account_id}) is unavailable" in page.select_one("h1").get_text()
        assert "AccessDenied" in page.get_text()
        assert "refused-1" in page.get_text()  # AWS's request id
        assert page.select_one("form.account-switcher") is not None  # a way to another
        working = viewer.get(f"/accounts/{members[PROD]}/roles")
        assert working.status_code == 200
        assert "prod-deploy" in working.text
        assert viewer.get("/roles").status_code == 200
        # The accounts page: each account that works opens its roles; Staging is only named.
        listed = soup(viewer.get("/accounts"))
        links = {a.get_text(): a["href"] for a in listed.select("#accounts td:first-child a")}
        assert links["Production"] == f"/accounts/{members[PROD]}/roles"
        assert "/roles" in links.values()  # RoleDesk's own account
        assert "Staging" not in links
        assert "Staging" in listed.select_one(f"#account-{staging.account_id}").get_text()
        for href in links.values():
            assert viewer.get(href).status_code == 200


def test_the_audit_history_filters_by_account(
    operator: TestClient, members: list[str], org: Services
):
    """Runs after the wizard test: its calls were recorded with the development account."""
    dev, prod = members[DEV], members[PROD]
    page = soup(operator.get("/audit"))
    offered = [o["value"] for o in page.select("#audit-account option")]
    assert offered == ["", org.identity.account, dev, prod, members[STAGING]]
    assert page.select_one("label[for='audit-account']").get_text(strip=True) == "AWS account"
    # The role's name as the search too: other tests of the package (the pair's, the
    # reconciler's) record many more events in the development account, and may run first.
    made_here = {"q": "dev-made-here"}
    in_dev = operator.get("/audit", params={"account": dev, **made_here})
    assert in_dev.status_code == 200
    assert f"arn:aws:iam::{dev}:role/dev-made-here" in in_dev.text
    assert soup(in_dev).select_one("#audit-account option[selected]")["value"] == dev
    in_prod = operator.get("/audit", params={"account": prod})
    assert "dev-made-here" not in in_prod.text
    # The same filter from inside an account's pages.
    inside = operator.get(f"/accounts/{dev}/audit", params={"account": dev, **made_here})
    assert f"arn:aws:iam::{dev}:role/dev-made-here" in inside.text
    wrong = soup(operator.get("/audit", params={"account": "12345"}))
    assert wrong.select_one("#audit-account-error").get_text() == "An AWS account id: 12 digits."
    assert wrong.select_one("#audit-account")["aria-invalid"] == "true"


@pytest.fixture
def fresh_viewer(org: Services, members: list[str]) -> Iterator[TestClient]:
    """A new app: every account's roles list read from AWS on first use (the lists other
    tests' apps stored in the package's database are marked out of date: a new process
    would otherwise start from them, app.shared.state)."""
    assert org.shared is not None
    for key in ("", *members):
        org.shared.expire(ROLES, key)
    app = create_app(org)
    app.state.account_hub = AccountHub(org.settings, fresh_clients(org), org.identity.account)
    with signed_in(app, "vera", "viewer") as viewer:
        yield viewer


def test_roles_searched_across_every_account_with_an_account_column_and_filter(
    fresh_viewer: TestClient, members: list[str], org: Services
):
    operator = fresh_viewer
    response = searched(operator, q="DEPLOY")
    assert response.status_code == 200
    page = soup(response)
    rows = [
        [td.get_text(strip=True) for td in tr.select("td")]
        for tr in page.select("#all-roles tbody tr")
    ]
    found = {(r[0], r[1]) for r in rows}
    seeded = {
        (f"Development ({members[DEV]})", "dev-deploy"),
        (f"Staging ({members[STAGING]})", "staging-deploy"),
        (f"Production ({members[PROD]})", "prod-deploy"),
    }
    # Every account's roles as AWS has them: other tests of the package (the pair's) make
    # roles with "deploy" in their names in the member accounts too, and may run first.
    labels = {
        org.identity.account: "RoleDesk's own account",
        members[DEV]: "Development",
        members[STAGING]: "Staging",
        members[PROD]: "Production",
    }
    assert seeded <= found
    assert found == {
        (f"{label} ({account_id})", n)
        for account_id, label in labels.items()
        for n in role_names(org, account_id)
        if "deploy" in n.lower()
    }
    link = page.select_one(f"#all-roles a[href='/accounts/{members[PROD]}/roles/prod-deploy']")
    assert link is not None
    total = sum(len(role_names(org, a)) for a in (org.identity.account, *members))
    assert (
        page.select_one("#all-roles-count")
        .get_text()
        .endswith(f"of {total} roles in 4 of 4 accounts")
    )
    only = soup(
        operator.get("/all-accounts/roles", params={"q": "deploy", "account": members[STAGING]})
    )
    assert [a.get_text() for a in only.select("#all-roles tbody a")] == ["staging-deploy"]
    assert only.select_one("#all-roles-account option[selected]")["value"] == members[STAGING]
    fragment = operator.get(
        "/all-accounts/roles", params={"q": "auditor"}, headers={"HX-Request": "true"}
    )
    assert "<html" not in fragment.text
    assert fragment.text.count("ReadOnlyAuditor") >= 3
    wrong = operator.get("/all-accounts/roles", params={"account": "x", "q": "a" * 201})
    assert wrong.status_code == 422
    assert soup(wrong).select_one("#all-roles-account-error").get_text()
    assert soup(wrong).select_one("#all-roles-q-error").get_text() == "At most 200 characters."


def test_an_unavailable_account_is_named_in_the_search_and_the_others_are_searched(
    org: Services, members: list[str]
):
    app = create_app(org)
    hub = AccountHub(org.settings, fresh_clients(org), org.identity.account)
    app.state.account_hub = hub
    prod = account(hub, members[PROD])
    hub.hub_clients.hook_every_client(
        "before-call.sts.AssumeRole", Refuse({"RoleArn": prod.role_arn})
    )
    with signed_in(app, "vera", "viewer") as viewer:
        page = soup(searched(viewer, q="deploy"))
    warning = page.select_one("#all-roles-results article.warning").get_text(" ")
    assert f"Production ({prod.account_id}) is unavailable" in warning and "AccessDenied" in warning
    names = {a.get_text() for a in page.select("#all-roles tbody a")}
    assert {"dev-deploy", "staging-deploy"} <= names and "prod-deploy" not in names
    assert "in 3 of 4 accounts" in page.select_one("#all-roles-count").get_text()


def test_signing_in_from_a_member_accounts_page_comes_back_to_it(
    app_hub: tuple[Any, AccountHub], members: list[str]
):
    with TestClient(app_hub[0]) as anonymous:
        response = anonymous.get(f"/accounts/{members[DEV]}/roles", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == (f"/sign-in?next=%2Faccounts%2F{members[DEV]}%2Froles")


class Hold:
    """Holds every call it is hooked on until released (an account still loading)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.held = 0

    def __call__(self, **_: Any) -> None:
        self.held += 1
        assert self.released.wait(60), "never released"


def test_progress_while_the_lists_load_live_and_without_javascript(
    org: Services, members: list[str]
):
    """Development loads, Production's role cannot be assumed, Staging's ListRoles is held:
    the page says which is which (no results yet), with htmx asking again and a "Check
    progress" link; once Staging is read, the results show."""
    assert org.shared is not None
    for key in ("", *members):  # lists stored by earlier tests would spare the held call
        org.shared.expire(ROLES, key)
    app = create_app(org)
    hub = AccountHub(org.settings, fresh_clients(org), org.identity.account)
    app.state.account_hub = hub
    prod = account(hub, members[PROD])
    hub.hub_clients.hook_every_client(
        "before-call.sts.AssumeRole", Refuse({"RoleArn": prod.role_arn})
    )
    hold = Hold()
    # Staging's clients for this user only (the ones the page will use): the hold is theirs.
    hub.clients(account(hub, members[STAGING]), "vera").hook_every_client(
        "before-call.iam.ListRoles", hold
    )
    try:
        with signed_in(app, "vera", "viewer") as viewer:
            expected = {
                org.identity.account: "loaded",
                members[DEV]: "loaded",
                members[STAGING]: "loading",
                members[PROD]: "unavailable",
            }
            # The page answers after a bounded wait; on a busy machine the accounts that are
            # not held may still be loading then: ask again (the held one stays loading).
            deadline = time.monotonic() + 30
            while True:
                first = viewer.get("/all-accounts/roles", params={"q": "deploy"})
                assert first.status_code == 200
                page = soup(first)
                assert page.select_one("#all-roles") is None  # no results while one loads
                states = {
                    tr.td.get_text(strip=True).rsplit("(", 1)[1].rstrip(")"): tr["data-state"]
                    for tr in page.select("#all-roles-accounts tbody tr")
                }
                if states == expected or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert states == {
                org.identity.account: "loaded",
                members[DEV]: "loaded",
                members[STAGING]: "loading",
                members[PROD]: "unavailable",
            }
            assert "AccessDenied" in page.select_one("tr[data-state=unavailable]").get_text()
            bar = page.select_one("#all-roles-progress progress")
            assert (bar["value"], bar["max"]) == ("3", "4")
            assert page.select_one("label[for=all-roles-progress-bar]") is not None
            assert page.select_one("meta[http-equiv]") is None  # no meta refresh
            # Live: htmx asks again for the fragment, which waits for the next account.
            section = page.select_one("#all-roles-progress")
            assert section["hx-trigger"] == "load" and "check=1" in section["hx-get"]
            polled = viewer.get(section["hx-get"], headers={"HX-Request": "true"})
            assert "<html" not in polled.text and 'data-state="loading"' in polled.text
            # Without JavaScript: the link asks again; the account is read meanwhile.
            check = page.select_one("#all-roles-check")["href"]
            assert "q=deploy" in check and "check=1" in check
            assert hold.held == 1  # asked again, not read again: one load per account
            hold.released.set()
            done = soup(viewer.get(check))
    finally:
        hold.released.set()
    assert done.select_one("#all-roles-progress") is None
    names = {a.get_text() for a in done.select("#all-roles tbody a")}
    assert {"dev-deploy", "staging-deploy"} <= names and "prod-deploy" not in names
    warning = done.select_one("#all-roles-results article.warning").get_text(" ")
    assert f"Production ({prod.account_id}) is unavailable" in warning
    assert "in 3 of 4 accounts" in done.select_one("#all-roles-count").get_text()


def test_a_role_change_and_the_access_review_work_in_a_member_account(
    operator: TestClient, members: list[str], org: Services
):
    """The role page's changes (tags here: review, then apply through the audited path) act
    in the account of the URL only; the access review lists that account's roles."""
    staging = members[STAGING]
    base = f"/accounts/{staging}/roles/staging-deploy/tags"
    page = soup(operator.get(f"{base}/edit"))
    assert page.select_one(f"form[action='{base}/review']") is not None
    review = post(
        operator,
        f"{base}/review",
        {
            "tag_key": "journey-tag",
            "tag_value": "member",
            "base": page.select_one('input[name="base"]')["value"],
        },
    )
    assert review.status_code == 200, review.text[:300]
    form = soup(review).select_one(f"form[action='{base}/apply']")
    fields: dict[str, Any] = {}
    for field in form.select("input[type=hidden]"):
        fields.setdefault(field["name"], []).append(field.get("value", ""))
    data = {k: v if k in ("tag_key", "tag_value") else v[0] for k, v in fields.items()}
    applied = operator.post(f"{base}/apply", data=data, follow_redirects=False)
    assert applied.status_code == 303, applied.text[:300]
    iam = boto_in(org, staging, "iam")
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName="staging-deploy")["Tags"]}
    assert tags.get("journey-tag") == "member"
    for elsewhere in (org.identity.account, members[DEV], members[PROD]):
        other = boto_in(org, elsewhere, "iam")
        for role in other.list_roles()["Roles"]:
            listed = other.list_role_tags(RoleName=role["RoleName"])["Tags"]
            assert "journey-tag" not in {t["Key"] for t in listed}, (elsewhere, role)
    with org.db.session() as session:
        recorded = set(
            session.scalars(
                select(AuditEvent.account_id).where(
                    AuditEvent.action == "iam:TagRole",
                    AuditEvent.target.endswith(":role/staging-deploy"),
                )
            )
        )
    assert recorded == {staging}
    iam.untag_role(RoleName="staging-deploy", TagKeys=["journey-tag"])

    # The access review: the first visit scans the account in the background; once done,
    # its rows are the member account's roles, with links that stay in it.
    review_page = operator.get(f"/accounts/{staging}/access-review")
    assert review_page.status_code == 200
    assert f"Staging ({staging})" in soup(review_page).title.get_text()
    for _ in range(300):
        progress = operator.get(f"/accounts/{staging}/access-review/progress")
        if progress.headers.get("HX-Refresh") == "true":
            break
        time.sleep(0.1)
    reviewed = soup(operator.get(f"/accounts/{staging}/access-review", params={"per_page": 100}))
    links = {a["href"] for a in reviewed.select("#review-results a[href*='/access-review/roles/']")}
    prefix = f"/accounts/{staging}/access-review/roles/"
    assert links >= {prefix + "staging-deploy", prefix + "staging-app-ec2"}
    assert all(link.startswith(prefix) for link in links)
    assert not any(n in link for link in links for n in ("dev-deploy", "prod-deploy"))


def test_ec2_attach_in_a_member_account(operator: TestClient, members: list[str], org: Services):
    """Attaching a role to an instance from a member account's EC2 page acts on that
    account's instance (the instance ids are the account's own)."""
    prod = members[PROD]
    ec2 = boto_in(org, prod, "ec2")
    worker = next(
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if {"Key": "Name", "Value": "prod-worker"} in i.get("Tags", [])
    )
    applied = post(
        operator,
        f"/accounts/{prod}/instances/apply",
        {"action": "attach", "choice": "profile:prod-app-ec2", "instance_id": worker},
    )
    assert applied.status_code == 303, applied.text[:300]
    location = applied.headers["location"]
    assert location.startswith(f"/accounts/{prod}/instances/operations/")
    for _ in range(100):  # the run is in the background: its page says when it is done
        page = soup(operator.get(location))
        summary = page.select_one(".outcome-summary")
        if summary is not None and "Done." in summary.get_text():
            break
        time.sleep(0.1)
    assert "Changed" in page.select_one(f"#outcome-{worker} .result").get_text()
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [worker]}]
    )["IamInstanceProfileAssociations"]
    assert [a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1] for a in associations] == [
        "prod-app-ec2"
    ]
    for association in associations:  # the package's organization, as it was
        ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
