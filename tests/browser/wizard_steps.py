"""Drives the create-role wizard in Chromium the way a person does (JavaScript on or off), for
the journeys that start by creating a role: sign-in (issue 6), audit history (issue 5) and the
XSS checks. The wizard's own journeys are in test_wizard_journey.py."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import follow_progress

ACCOUNT = "123456789012"
SSM_CORE = "AmazonSSMManagedInstanceCore"
S3_READ = "AmazonS3ReadOnlyAccess"


def open_step_one(page: Any, server_url: str) -> None:
    """ "Create role" as a person reaches it: step 1 at once, or the drafts page first when
    there are drafts to resume (then "Start a new role")."""
    page.goto(f"{server_url}/create-role")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile("^(Create role|Select trusted entity)$"))
    if heading.text_content() == "Create role":
        page.get_by_role("button", name="Start a new role").click()
    expect(heading).to_have_text("Select trusted entity")


def next_refused(page: Any) -> None:
    """Next on step 1 with values the server refuses, until its answer is on the page. With
    JavaScript on, the live preview shows the same field errors a moment before Next's answer
    replaces the form (with the values as submitted), so a test that waits only for the error
    would go on with the old form's fields (disabled meanwhile, since step_busy)."""
    step = page.locator("#wizard-step form.wizard-form")
    form = step.element_handle() if page.js_enabled else None
    page.get_by_role("button", name="Next").click()
    if form is not None:
        page.wait_for_function("form => !form.isConnected", arg=form)


def create_ec2_role(
    page: Any, server_url: str, name: str, description: str = "", account: str = ACCOUNT
) -> str:
    """An EC2 role with two managed policies (so one run makes several audited calls):
    start, step 1 (service), step 2 (add policies), step 3 (name, create). Returns the ARN
    the done page shows. In a member account: `server_url` ends with its prefix
    (`/accounts/<id>`) and `account` is its id."""
    open_step_one(page, server_url)
    page.get_by_label("Service principal").fill("ec2.amazonaws.com")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    page.get_by_role("button", name=f"Add {SSM_CORE}").first.click()
    expect(page.locator("#chosen li")).to_have_count(1)
    search = page.get_by_label("Search policies by name")
    search.fill(S3_READ)
    if page.js_enabled:
        search.press("Enter")
    else:
        page.get_by_role("button", name="Search").click()
    expect(page.locator("#policy-rows tr")).to_have_count(1)
    page.get_by_role("button", name=f"Add {S3_READ}").click()
    expect(page.locator("#chosen li")).to_have_count(2)
    page.get_by_role("button", name="Next", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Name, review, and create")
    page.get_by_label("Role name").fill(name)
    if description:
        page.get_by_label("Description").fill(description)
    page.get_by_role("button", name="Create role").click()
    arn = f"arn:aws:iam::{account}:role/{name}"
    follow_progress(page, page.locator("#role-arn"))  # a slow create shows its progress first
    expect(page.locator("#role-arn")).to_have_text(arn)
    expect(page).to_have_url(re.compile(r"/create-role/[0-9a-f-]+/done$"))
    return arn
