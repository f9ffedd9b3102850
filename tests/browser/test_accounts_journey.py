"""Accounts, the account switcher, the search across accounts and a cross-account role pair
in the browser, with and without JavaScript, on a
server whose sandbox holds the seeded organization; the outcome checked with boto3. (axe-core
checks these pages in tests/browser/test_accessibility.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

import boto3
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, start_server


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


# Starting a server that seeds three member accounts takes minutes on a loaded machine.
@pytest.mark.timeout(900)
def test_make_a_cross_account_pair(live_server, page):
    js = page.js_enabled
    name = f"journey-{'js' if js else 'nojs'}"
    page.goto(f"{live_server.url}/roles")
    page.get_by_role("link", name="Accounts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts")
    expect(page.locator("#accounts tbody tr")).to_have_count(4)
    expect(page.locator(".account-status", has_text="Unavailable")).to_have_count(0)

    page.get_by_role("link", name="Let a role in one account use a role in another").click()
    # Accounts are listed hub first, then by name: Development, Production, Staging.
    page.get_by_label("Account A", exact=True).select_option(index=2)
    page.get_by_label("Role name in account A").fill("dev-deploy")
    page.get_by_label("Account B", exact=True).select_option(index=3)
    page.get_by_label("New role name in account B").fill(name)
    page.get_by_label("External ID (with the first choice)").fill("journey-ext-1")
    page.get_by_role("button", name="Review the pair").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Review: let dev-deploy use {name}")
    expect(page.locator("#pair-trust")).to_contain_text("role/dev-deploy")
    page.get_by_role("button", name="Create the pair").click()
    expect(page.locator(".outcome-summary")).to_contain_text("Done.", timeout=30_000)
    page.get_by_role("link", name="How to use the new role").click()
    expect(page.locator("#pair-command")).to_contain_text("--external-id journey-ext-1")

    # The role exists in account B (Production) only, trusting dev-deploy.
    orgs = live_server.boto3_client("organizations")
    ids = {a["Name"]: a["Id"] for a in orgs.list_accounts()["Accounts"]}
    sts = live_server.boto3_client("sts")
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ids['Production']}:role/OrganizationAccountAccessRole",
        RoleSessionName="journey-check",
    )["Credentials"]
    iam = boto3.client(
        "iam",
        endpoint_url=live_server.sandbox_endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {
        "AWS": f"arn:aws:iam::{ids['Development']}:role/dev-deploy"
    }


@pytest.mark.timeout(900)
def test_switch_account_and_search_every_account(live_server, page):
    page.goto(f"{live_server.url}/roles")
    # The switcher lists the hub first, then by name: Development, Production, Staging.
    page.get_by_label("Work in account").select_option(index=3)
    page.get_by_role("button", name="Switch account").click()
    expect(page).to_have_url(re.compile(r"/accounts/\d{12}/roles$"))
    expect(page.locator(".current-account")).to_contain_text("Staging")
    expect(page).to_have_title(re.compile(r"Staging \(\d{12}\)"))
    expect(page.get_by_role("link", name="staging-deploy")).to_be_visible()
    expect(page.get_by_role("link", name="dev-deploy")).to_have_count(0)

    page.get_by_role("link", name="Search every account").click()
    page.get_by_label("Role name contains").fill("deploy")
    page.get_by_role("button", name="Search roles").click()
    rows = page.locator("#all-roles tbody tr")
    expect(rows.filter(has_text="Development")).to_have_count(1)
    expect(rows.filter(has_text="Staging")).to_have_count(1)
    expect(rows.filter(has_text="Production")).to_have_count(1)
    rows.filter(has_text="Production").get_by_role("link", name="prod-deploy").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("prod-deploy")
    expect(page.locator(".current-account")).to_contain_text("Production")
