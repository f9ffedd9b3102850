"""Open the roles list, search, open a role: with and without JavaScript."""

import re

from playwright.sync_api import expect

from tests.browser.test_accessibility import wider_than_narrow_window


def test_browse_search_and_open_a_role(live_server, page):
    page.goto(f"{live_server.url}/roles")
    expect(page.locator(".sandbox-banner")).to_contain_text(live_server.sandbox_endpoint)
    expect(page.locator("#role-rows tr")).to_have_count(16)
    search = page.get_by_label("Search roles by name")
    if page.js_enabled:
        search.press_sequentially("lambda", delay=30)  # htmx searches as you type
        expect(page).to_have_url(re.compile(r"q=lambda"))
    else:
        search.fill("lambda")
        page.get_by_role("button", name="Search").click()
    expect(page.locator("#role-rows tr")).to_have_count(2)
    page.get_by_role("link", name="orders-lambda").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("orders-lambda")
    expect(page.locator("#permissions")).to_contain_text("AWSLambdaBasicExecutionRole")
    expect(page.locator("#trust pre")).to_contain_text("lambda.amazonaws.com")
    # What the page shows is what AWS holds.
    iam = live_server.boto3_client("iam")
    attached = iam.list_attached_role_policies(RoleName="orders-lambda")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSLambdaBasicExecutionRole"]


def test_last_activity_fills_in(live_server, page):
    page.goto(f"{live_server.url}/roles")
    show = page.get_by_role("link", name="Show last activity for these roles")
    if not page.js_enabled and show.count():
        # Without JavaScript the values come with a reload (unless an earlier visit to this
        # server already fetched them, in which case the page shows them straight away).
        show.click()
    # web-app-ec2 was used in the sandbox (its RoleLastUsed is set); reporting-ec2 never was.
    expect(page.locator("#last-used-web-app-ec2 time")).to_have_attribute(
        "datetime", re.compile(r"^\d{4}-\d\d-\d\dT")
    )
    expect(page.locator("#last-used-reporting-ec2")).to_have_text("None in the last 400 days")


def test_a_narrow_window_scrolls_the_roles_table_not_the_page(live_server, page):
    """At 1,024 px the roles table is wider than the window: it scrolls sideways in its own
    box, which the keyboard can reach, and the page never does."""
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{live_server.url}/roles")
    box = page.get_by_role("region", name="Roles")
    widths = box.evaluate("b => [b.scrollWidth, b.clientWidth]")
    assert widths[0] > widths[1], widths  # the table is wider than its box...
    assert wider_than_narrow_window(page) == []  # ...and the page is not
    assert box.get_attribute("tabindex") == "0"
