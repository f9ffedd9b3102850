"""Find a role's creation in the audit history, open its operation and the event: with and
without JavaScript.

The journey's first step makes the role. The wizard (issue 3) is being built in parallel, so
for now the role is one the sandbox seed created through the audited path at start-up;
swap `make_role` for "create a role in the wizard" once the wizard exists.
"""

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer


def make_role(live_server: LiveServer, page: Page) -> str:
    """Step 1: a role created through RoleDesk's audited path; returns its name."""
    name = "web-app-ec2"
    role = live_server.boto3_client("iam").get_role(RoleName=name)["Role"]
    assert role["Arn"].endswith(f":role/{name}")
    return name


def test_find_a_new_role_in_the_history_and_open_its_operation(live_server, page):
    name = make_role(live_server, page)
    page.goto(f"{live_server.url}/roles")
    page.get_by_role("link", name="Audit history").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit history")
    expect(page.locator("#chain-status")).to_contain_text(re.compile(r"verified up to sequence"))

    page.get_by_label("Target (ARN or role name)").fill(name)
    page.get_by_label("Action").fill("iam:CreateRole")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"target=web-app-ec2"))
    rows = page.locator("table.audit-events tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f":role/{name}")
    expect(rows.first).to_contain_text("succeeded")

    rows.first.get_by_role("link", name=re.compile("Steps of operation")).click()
    if page.js_enabled:  # htmx expands the operation in place
        steps = rows.first.locator("ol.operation-steps li")
    else:
        expect(page.get_by_role("heading", level=1)).to_contain_text("Operation")
        steps = page.locator("ol.operation-steps li")
    expect(steps.filter(has_text="iam:CreateRole").filter(has_text=name)).to_have_count(1)
    expect(steps.filter(has_text="iam:AttachRolePolicy").first).to_contain_text(name)

    steps.filter(has_text="iam:CreateRole").filter(has_text=name).get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("iam:CreateRole")
    expect(page.locator("#event-request")).to_contain_text(f'"name": "{name}"')
    expect(page.locator("#event-response")).to_contain_text("AWS request id")
    expect(page.locator("#event-summary")).to_contain_text("sandbox-seed")


def test_role_detail_lists_its_activity(live_server, page):
    name = make_role(live_server, page)
    page.goto(f"{live_server.url}/roles/{name}")
    activity = page.locator("#activity")
    expect(activity).to_contain_text("iam:CreateRole")
    expect(activity).to_contain_text("CloudTrail is not available in the sandbox")
    activity.get_by_role("link", name="All of this role's events in the audit history").click()
    expect(page.locator("table.audit-events tbody tr").last).to_contain_text("iam:CreateRole")
