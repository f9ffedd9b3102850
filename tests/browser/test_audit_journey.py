"""Create a role in the wizard, find its events in the audit history, open the operation and
the event: with and without JavaScript, the role checked through boto3."""

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer
from tests.browser.test_accessibility import wider_than_narrow_window
from tests.browser.wizard_steps import S3_READ, SSM_CORE, create_ec2_role

# One wizard run for an EC2 role with two managed policies, in the order RoleDesk runs it.
# In the order the engine sends them: after CreateRole, the steps it allows start together,
# the head of the longest chain first (CreateInstanceProfile, then AddRoleToInstanceProfile).
RUN_STEPS = [
    "iam:CreateRole",
    "iam:CreateInstanceProfile",
    "iam:AttachRolePolicy",
    "iam:AttachRolePolicy",
    "iam:AddRoleToInstanceProfile",
]


def make_role(live_server: LiveServer, page: Page, purpose: str) -> str:
    """Step 1: a role created in the wizard by the signed-in admin; returns its name."""
    name = f"audit-{purpose}-{'js' if page.js_enabled else 'nojs'}"
    arn = create_ec2_role(page, live_server.url, name)
    iam = live_server.boto3_client("iam")
    assert iam.get_role(RoleName=name)["Role"]["Arn"] == arn
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert sorted(p["PolicyName"] for p in attached) == [S3_READ, SSM_CORE]
    return name


def filter_history(page: Page, target: str, action: str) -> None:
    target_box = page.get_by_label("Target (ARN or role name)")
    target_box.fill(target)
    page.get_by_label("Action").fill(action)
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(rf"[?&]target={re.escape(target)}(&|$)"))
    expect(page).to_have_url(re.compile(rf"[?&]action={re.escape(action.replace(':', '%3A'))}"))


def operation_of(row) -> str:
    href = row.get_by_role("link", name=re.compile("Show steps of operation")).get_attribute("href")
    assert href and href.startswith("/audit/operations/"), href
    return href.rsplit("/", 1)[-1]


def test_find_a_new_role_in_the_history_and_open_its_operation(live_server, page):
    name = make_role(live_server, page, "history")
    page.get_by_role("link", name="Audit history").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit history")
    expect(page.locator("#chain-status")).to_contain_text(re.compile(r"verified up to sequence"))

    rows = page.locator("table.audit-events tbody tr")
    filter_history(page, name, "iam:AttachRolePolicy")
    expect(rows).to_have_count(2)
    attach_operations = {operation_of(rows.nth(i)) for i in range(2)}

    filter_history(page, name, "iam:CreateRole")
    expect(rows).to_have_count(1)
    created = rows.first
    expect(created).to_contain_text(f":role/{name}")
    expect(created).to_contain_text("succeeded")
    expect(created).to_contain_text(live_server.admin_name)
    operation_id = operation_of(created)
    assert attach_operations == {operation_id}  # one operation id for the whole run

    created.get_by_role("link", name=re.compile("Show steps of operation")).click()
    if page.js_enabled:  # htmx expands the operation in place
        steps = created.locator("ol.operation-steps li")
    else:
        expect(page.get_by_role("heading", level=1)).to_contain_text(operation_id)
        steps = page.locator("ol.operation-steps li")
    # The operations engine records the plan before the calls and the outcome after them.
    expect(steps).to_have_count(len(RUN_STEPS) + 2)
    codes = [s.locator("code").first.inner_text() for s in steps.all()]
    assert codes == ["roledesk:StartOperation", *RUN_STEPS, "roledesk:FinishOperation"]
    for step in steps.all()[1:-1]:
        expect(step).to_contain_text(name)
        expect(step).to_contain_text("succeeded")

    steps.filter(has_text="iam:CreateRole").get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("iam:CreateRole")
    expect(page.locator("#event-request")).to_contain_text(f'"name": "{name}"')
    expect(page.locator("#event-summary")).to_contain_text(live_server.admin_name)
    expect(page.locator("#event-summary")).to_contain_text(operation_id)
    # The request id AWS (the sandbox) answered with, not the "none recorded" fallback.
    request_id = page.locator("#event-response dt:text-is('AWS request id') + dd")
    expect(request_id).to_have_text(re.compile(r"^[0-9A-Za-z-]{16,}$"))


def test_role_detail_lists_its_activity(live_server, page):
    name = make_role(live_server, page, "activity")
    page.goto(f"{live_server.url}/roles/{name}")
    activity = page.locator("#activity")
    expect(activity).to_contain_text("iam:CreateRole")
    expect(activity).to_contain_text("iam:AttachRolePolicy")
    expect(activity).to_contain_text("CloudTrail is not available in the sandbox")
    activity.get_by_role("link", name="All of this role's events in the audit history").click()
    expect(page.locator("table.audit-events tbody tr").last).to_contain_text("iam:CreateRole")


def test_a_narrow_window_keeps_the_history_readable(live_server, page):
    """At 1,024 px the events table keeps room for each target's ARN (it was squeezed to a
    column of eight characters a line beside the actions) and scrolls sideways in its own
    box, which the keyboard can reach, never the page."""
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{live_server.url}/audit")
    box = page.get_by_role("region", name="Events")
    assert box.get_attribute("tabindex") == "0"
    arns = box.locator("td.target code", has_text="arn:aws:iam::")
    expect(arns.first).to_be_visible()
    widths = arns.evaluate_all("codes => codes.map(c => c.getBoundingClientRect().width)")
    assert min(widths) >= 180, widths
    assert wider_than_narrow_window(page) == []
