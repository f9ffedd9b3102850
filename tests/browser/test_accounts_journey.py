"""Accounts, the account switcher, the search across accounts (and its progress while the
accounts' lists load), a role made in a member account through the wizard and a
cross-account role pair in the browser, with and without JavaScript, on a server whose
sandbox holds the seeded organization; the outcome checked with boto3. axe-core checks the
pages these journeys reach (0 critical, 0 serious), as tests/browser/test_accessibility.py
does for the hub's pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, assert_header_fits, sign_in, start_server
from tests.browser.test_accessibility import AXE, AXE_SOURCE, BLOCKING
from tests.browser.wizard_steps import create_ec2_role

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S | re.I)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    """This module's server seeds the sandbox organization (three member accounts); moto
    loads the managed policies for each, so it may take longer to start."""
    server = start_server(
        tmp_path_factory.mktemp("accounts"),
        {"ROLEDESK_SANDBOX_ORGANIZATION": "true"},
        start_timeout=300,
    )
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def checker(browser) -> Iterator[Page]:
    """A JavaScript page that may run axe (CSP bypassed), for copies of the pages checked:
    the journeys' own pages keep RoleDesk's CSP, which refuses injected scripts."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make static)")
    context = browser.new_context(bypass_csp=True, viewport={"width": 1366, "height": 900})
    yield context.new_page()
    context.close()


def axe_blocking(page: Page, checker: Page) -> list[str]:
    """The critical and serious axe violations of the page as the browser shows it now
    (copied without scripts; <noscript> content shown only when JavaScript is off). A page
    still loading after a click is waited for: its content read mid-navigation was a document
    with no <html lang> nor <title> yet (axe "serious", seen on a loaded machine)."""
    page.wait_for_load_state("load")
    html = _SCRIPT.sub("", page.content())
    if page.js_enabled:  # type: ignore[attr-defined]
        html = re.sub(r"<noscript>.*?</noscript>", "", html, flags=re.S)
    else:
        html = re.sub(r"</?noscript>", "", html)
    base = re.match(r"https?://[^/]+", page.url)
    assert base
    checker.set_content(html.replace("<head>", f'<head><base href="{base.group(0)}/">', 1))
    checker.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    checker.add_script_tag(content=AXE_SOURCE)
    result: dict[str, Any] = checker.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{page.url}: {v['impact']} {v['id']}: {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


def account_ids(server: LiveServer) -> dict[str, str]:
    orgs = server.boto3_client("organizations")
    return {a["Name"]: a["Id"] for a in orgs.list_accounts()["Accounts"]}


def iam_in(server: LiveServer, account_id: str) -> Any:
    """boto3 IAM acting in a member account (the role CreateAccount leaves there)."""
    creds = server.boto3_client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="journey-check",
    )["Credentials"]
    return boto3.client(
        "iam",
        endpoint_url=server.sandbox_endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def role_exists(iam: Any, name: str) -> bool:
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        return False
    return True


def search_results(page: Page) -> None:
    """Wait for the search's results: live with htmx, else "Check progress" while the
    accounts' lists load."""
    if page.js_enabled:  # type: ignore[attr-defined]
        expect(page.locator("#all-roles")).to_be_visible(timeout=60_000)
        return
    for _ in range(30):
        if page.locator("#all-roles-check").count() == 0:
            break
        page.get_by_role("link", name="Check progress").click()
    expect(page.locator("#all-roles")).to_be_visible()


# Starting a server that seeds three member accounts takes minutes on a loaded machine.
@pytest.mark.timeout(900)
def test_make_a_cross_account_pair(live_server, page, checker):
    found: list[str] = []
    js = page.js_enabled
    name = f"journey-{'js' if js else 'nojs'}"
    page.goto(f"{live_server.url}/roles")
    page.get_by_role("link", name="Accounts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts")
    expect(page.locator("#accounts tbody tr")).to_have_count(4)
    expect(page.locator(".account-status", has_text="Unavailable")).to_have_count(0)
    found += axe_blocking(page, checker)

    page.get_by_role("link", name="Let a role in one account use a role in another").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Let a role in one account use a role in another"
    )
    found += axe_blocking(page, checker)
    # Accounts are listed hub first, then by name: Development, Production, Staging.
    page.get_by_label("Account A", exact=True).select_option(index=2)
    page.get_by_label("Role name in account A").fill("dev-deploy")
    page.get_by_label("Account B", exact=True).select_option(index=3)
    page.get_by_label("New role name in account B").fill(name)
    page.get_by_label("External ID (with the first choice)").fill("journey-ext-1")
    page.get_by_role("button", name="Review the pair").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Review: let dev-deploy use {name}")
    expect(page.locator("#pair-trust")).to_contain_text("role/dev-deploy")
    found += axe_blocking(page, checker)
    page.get_by_role("button", name="Create the pair").click()
    expect(page.locator(".outcome-summary")).to_contain_text("Done.", timeout=30_000)
    found += axe_blocking(page, checker)
    page.get_by_role("link", name="How to use the new role").click()
    expect(page.locator("#pair-command")).to_contain_text("--external-id journey-ext-1")
    found += axe_blocking(page, checker)
    assert found == [], "\n".join(found)

    # The role exists in account B (Production) only, trusting dev-deploy.
    ids = account_ids(live_server)
    iam = iam_in(live_server, ids["Production"])
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {
        "AWS": f"arn:aws:iam::{ids['Development']}:role/dev-deploy"
    }


@pytest.mark.timeout(900)
def test_switch_account_and_search_every_account(live_server, page, checker):
    found: list[str] = []
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/roles")
    # With the switcher and "Search every account", the header still fits one row.
    assert_header_fits(page)
    # The switcher lists the hub first, then by name: Development, Production, Staging.
    page.get_by_label("Work in account").select_option(index=3)
    page.get_by_role("button", name="Switch account").click()
    expect(page).to_have_url(re.compile(r"/accounts/\d{12}/roles$"))
    expect(page.locator("#switch-account option:checked")).to_contain_text("Staging")
    expect(page).to_have_title(re.compile(r"Staging \(\d{12}\)"))
    expect(page.get_by_role("link", name="staging-deploy")).to_be_visible()
    expect(page.get_by_role("link", name="dev-deploy")).to_have_count(0)
    found += axe_blocking(page, checker)  # a member account's roles page

    page.get_by_role("link", name="Search every account").click()
    page.get_by_label("Role name contains").fill("deploy")
    page.get_by_role("button", name="Search roles").click()
    search_results(page)
    found += axe_blocking(page, checker)
    rows = page.locator("#all-roles tbody tr")
    expect(rows.filter(has_text="Development")).to_have_count(1)
    expect(rows.filter(has_text="Staging")).to_have_count(1)
    expect(rows.filter(has_text="Production")).to_have_count(1)
    rows.filter(has_text="Production").get_by_role("link", name="prod-deploy").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("prod-deploy")
    expect(page.locator("#switch-account option:checked")).to_contain_text("Production")
    assert found == [], "\n".join(found)


@pytest.mark.timeout(900)
def test_create_a_role_in_a_member_account(live_server, page, checker):
    """Switch to Development, then the wizard: the role is in Development and nowhere
    else (boto3 against the sandbox, in every account of the organization)."""
    ids = account_ids(live_server)
    dev = ids["Development"]
    name = f"member-ec2-{'js' if page.js_enabled else 'nojs'}"
    page.goto(f"{live_server.url}/roles")
    page.get_by_label("Work in account").select_option(index=1)  # hub, then Development
    page.get_by_role("button", name="Switch account").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/{dev}/roles")
    page.get_by_role("link", name="Create role", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/accounts/{dev}/create-role"))
    found = axe_blocking(page, checker)  # the drafts page or step 1, in the member account
    arn = create_ec2_role(page, f"{live_server.url}/accounts/{dev}", name, account=dev)
    assert arn == f"arn:aws:iam::{dev}:role/{name}"
    expect(page).to_have_url(re.compile(rf"/accounts/{dev}/create-role/[0-9a-f-]+/done$"))
    expect(page.locator("#switch-account option:checked")).to_contain_text("Development")
    found += axe_blocking(page, checker)
    assert found == [], "\n".join(found)

    made = iam_in(live_server, dev).get_role(RoleName=name)["Role"]
    assert made["Arn"] == arn
    trust = made["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert trust == {"Service": "ec2.amazonaws.com"}
    attached = iam_in(live_server, dev).list_attached_role_policies(RoleName=name)
    assert {p["PolicyName"] for p in attached["AttachedPolicies"]} == {
        "AmazonSSMManagedInstanceCore",
        "AmazonS3ReadOnlyAccess",
    }
    assert not role_exists(live_server.boto3_client("iam"), name)  # not in the hub
    for other in ("Staging", "Production"):
        assert not role_exists(iam_in(live_server, ids[other]), name), other


@pytest.fixture
def slow_server(tmp_path_factory) -> Iterator[LiveServer]:
    """Two configured member accounts and 1 s added to every AWS call (the sandbox's
    latency setting, as on a slow network): their lists take seconds to read, so the
    search shows its progress first. moto also builds each account on its first call.
    One server per test (JavaScript on, then off): each starts with nothing loaded."""
    members = [{"id": "210987654321", "name": "Alpha"}, {"id": "310987654321", "name": "Beta"}]
    server = start_server(
        tmp_path_factory.mktemp("slow"),
        {
            "ROLEDESK_ACCOUNTS_SOURCE": "configuration",
            "ROLEDESK_ACCOUNTS": json.dumps(members),
            "ROLEDESK_SANDBOX_LATENCY_MS": "1000",
        },
    )
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.mark.timeout(600)
def test_search_shows_which_accounts_are_loaded_while_they_load(
    slow_server, anonymous_page, checker
):
    page = anonymous_page
    sign_in(page, slow_server, slow_server.admin_name, slow_server.admin_password)
    page.goto(f"{slow_server.url}/all-accounts/roles?q=role")
    # The hub's list is loaded (the roles page after sign-in read it); the members' are not.
    states = page.locator("#all-roles-accounts tbody tr")
    expect(states).to_have_count(3)
    expect(states.filter(has_text="Alpha")).to_contain_text("Loading")
    expect(states.filter(has_text="Beta")).to_contain_text("Loading")
    expect(page.locator("label[for=all-roles-progress-bar]")).to_contain_text("1 of 3 accounts")
    if not page.js_enabled:
        found = axe_blocking(page, checker)
        assert found == [], "\n".join(found)
        page.get_by_role("link", name="Check progress").click()  # the server waits a while
        for _ in range(10):
            if page.locator("#all-roles-check").count() == 0:
                break
            page.get_by_role("link", name="Check progress").click()
    # With JavaScript the same page fills in by itself: no click, no navigation.
    expect(page.locator("#all-roles-progress")).to_have_count(0, timeout=60_000)
    expect(page.locator("#all-roles-count")).to_contain_text("in 3 of 3 accounts")
    found = axe_blocking(page, checker)
    assert found == [], "\n".join(found)
