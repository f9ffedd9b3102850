"""axe-core over every page RoleDesk serves (issue 13), with JavaScript on and off: signed out
and signed in, error pages, each wizard step and its done page, roles, instances (list, review,
operation), audit (list, event, operation), users. No critical or serious violation may remain,
and no page may be wider than a 1,024 px window.

axe is injected from node_modules (npm `axe-core`, pinned in package-lock.json) into a context
made with `bypass_csp=True`: RoleDesk's strict CSP would block the injected script otherwise.
That bypass exists only in this test's browser context, never in the app.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, assert_header_fits, follow_progress, sign_in
from tests.browser.wizard_steps import create_ec2_role, open_step_one

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_SOURCE = AXE.read_text() if AXE.exists() else ""
BLOCKING = ("critical", "serious")


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S | re.I)


def axe_findings(page: Page) -> list[str]:
    """The page's critical and serious violations, one line each (rule, impact, targets).

    With JavaScript off, axe cannot run in the page itself (its timers never fire), so the page
    as the browser rendered it is copied, without scripts and with <noscript> content shown as a
    script-less browser shows it, into a JavaScript page of a separate context (same stylesheets
    through <base>) and checked there."""
    if not page.js_enabled:  # type: ignore[attr-defined]
        html = _SCRIPT.sub("", page.content())
        html = re.sub(r"</?noscript>", "", html)
        base = re.match(r"https?://[^/]+", page.url)
        assert base
        html = html.replace("<head>", f'<head><base href="{base.group(0)}/">', 1)
        checker = page.checker  # type: ignore[attr-defined]
        checker.set_content(html, wait_until="load")
        page = checker
    # Pico animates colours on buttons and links; judge them as they settle, not mid-fade.
    page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    page.add_script_tag(content=AXE_SOURCE)
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['impact']} {v['id']}: {v['help']} at "
        + ", ".join(f"{n['target']} {n['html'][:120]}" for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.fixture(params=[True, False], ids=["js", "no-js"])
def axe_context(request, browser):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make static)")
    context = browser.new_context(
        java_script_enabled=request.param, bypass_csp=True, viewport={"width": 1366, "height": 900}
    )
    yield context, request.param
    context.close()


def js_on(page: Page) -> bool:
    return bool(page.js_enabled)  # type: ignore[attr-defined]


NARROW = 1024  # a small laptop's window: every page fits it without scrolling sideways


def wider_than_narrow_window(page: Page) -> list[str]:
    """A finding when the page, laid out at NARROW px, is wider than the window (a table too
    wide scrolls in its own box instead; the elements that stick out are named)."""
    page.set_viewport_size({"width": NARROW, "height": 900})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        if width <= NARROW:
            return []
        outside = page.evaluate(
            """(w) => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > w + 1
                    && [...e.children].every(c => c.getBoundingClientRect().right <= w + 1))
                .slice(0, 5).map(e => e.tagName + '.' + e.className)""",
            NARROW,
        )
        return [f"page {width} px wide in a {NARROW} px window: {', '.join(outside)}"]
    finally:
        page.set_viewport_size({"width": 1366, "height": 900})


def check(page: Page, url: str, found: dict[str, list[str]], status: int | None = None) -> None:
    response = page.goto(url)
    assert response is not None
    if status is not None:
        assert response.status == status, (url, response.status)
    findings = axe_findings(page) + wider_than_narrow_window(page)
    if findings:
        found[url] = findings


def wizard_pages(page: Page, server: LiveServer, found: dict[str, list[str]]) -> None:
    """Each wizard step (by its own URL, as a person reaches it) and the done page."""
    create_ec2_role(page, server.url, f"axe-{'js' if page.js_enabled else 'nojs'}")  # type: ignore[attr-defined]
    done = page.url
    draft = re.search(r"/create-role/([0-9a-f-]+)/done", done)
    assert draft
    check(page, done, found)
    # A second draft, left at step 3, for the step pages themselves.
    open_step_one(page, server.url)
    check(page, page.url, found)  # a new role's step 1, before any draft exists
    page.get_by_label("Service principal").fill("lambda.amazonaws.com")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    base = page.url.rsplit("/", 1)[0]
    check(page, f"{base}/trust", found)
    page.get_by_label("Elastic Container Service", exact=True).check()
    if not js_on(page):
        page.get_by_role("button", name="Show use cases").click()
    expect(page.get_by_text("Use case for Elastic Container Service")).to_be_visible()
    if findings := axe_findings(page) + wider_than_narrow_window(page):
        found[f"{base}/trust (use cases of a service)"] = findings
    check(page, f"{base}/permissions", found)
    check(page, f"{base}/permissions?q=S3ReadOnly", found)
    check(page, f"{base}/permissions?view=arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", found)
    check(page, f"{base}/review", found)
    check(page, f"{server.url}/create-role", found)  # the drafts list (this draft is on it)


def operation_pages(page: Page, server: LiveServer, found: dict[str, list[str]]) -> None:
    """The audit list, an event, an operation; instances with a review and an operation."""
    check(page, f"{server.url}/audit", found)
    link = page.locator("a[href^='/audit/events/']").first
    check(page, server.url + str(link.get_attribute("href")), found)
    page.goto(f"{server.url}/audit")
    operation = page.locator("a[href^='/audit/operations/']").first
    check(page, server.url + str(operation.get_attribute("href")), found)
    check(page, f"{server.url}/instances", found)
    page.get_by_label("bastion", exact=True).check()
    # Each JavaScript run attaches a different role, so the other run's attach leaves a change.
    role = "web-app-ec2" if js_on(page) else "batch-worker-ec2"
    page.get_by_label("Role to attach").select_option(label=role)
    page.get_by_role("button", name="Attach role", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"role {role}")
    if findings := axe_findings(page) + wider_than_narrow_window(page):
        found["/instances/review"] = findings
    # The other JavaScript run may have attached it already: then this replaces it.
    page.get_by_role("button", name=re.compile(r"^(Attach|Replace) role on 1 instance")).click()
    # The change's page while it runs, as shown without JavaScript ("Check progress").
    running = not js_on(page) and page.get_by_role("button", name="Check progress").count()
    if running and (findings := axe_findings(page) + wider_than_narrow_window(page)):
        found["/instances/operations/… (running)"] = findings
    follow_progress(page, page.locator(".outcome-summary", has_text="Done."), timeout=15)
    if findings := axe_findings(page) + wider_than_narrow_window(page):
        found["/instances/operations/…"] = findings


def test_no_serious_accessibility_violations_anywhere(live_server, axe_context):
    context, js = axe_context
    page = context.new_page()
    page.js_enabled = js  # type: ignore[attr-defined]
    if not js:
        checker_context = context.browser.new_context(
            bypass_csp=True, viewport={"width": 1366, "height": 900}
        )
        page.checker = checker_context.new_page()  # type: ignore[attr-defined]
    found: dict[str, list[str]] = {}
    url = live_server.url
    # Signed out: sign-in, a refused setup link, a page that does not exist.
    check(page, f"{url}/sign-in", found, 200)
    check(page, f"{url}/setup?token=not-a-token", found, 404)
    check(page, f"{url}/no-such-page", found)
    sign_in(page, live_server, live_server.admin_name, live_server.admin_password)
    # The first Tab stop is the skip link, visible when focused; it leads to the content.
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text("Skip to main content")
    assert (skip.bounding_box() or {}).get("y", -1) >= 0  # on screen, not parked off it
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#main$"))
    # At 1366 px the header's items share one row, and banner plus header stay short.
    assert_header_fits(page)
    header = page.locator("header.site-header").bounding_box()
    assert header is not None and header["height"] < 0.09 * 900, header
    for path, status in [
        ("/roles", 200),
        ("/roles?q=ec2", 200),
        ("/roles/web-app-ec2", 200),
        ("/roles/github-actions-deploy", 200),
        ("/roles/no-such-role", 404),
        # The role page's change forms (issue 11); reading them changes nothing.
        ("/roles/web-app-ec2/trust/edit", 200),
        ("/roles/web-app-ec2/trust/rebuild", 200),  # the trusted-entity forms, prefilled
        ("/roles/github-actions-deploy/trust/rebuild", 200),
        ("/roles/web-app-ec2/settings/edit", 200),
        ("/roles/web-app-ec2/policies/edit?q=ReadOnly", 200),
        ("/roles/web-app-ec2/inline/edit", 200),
        ("/roles/web-app-ec2/boundary/edit", 200),
        ("/roles/web-app-ec2/tags/edit", 200),
        ("/roles/web-app-ec2/revoke", 200),
        ("/roles/web-app-ec2/delete", 200),
        ("/policy?arn=arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", 200),
        ("/users", 200),
        ("/accounts", 200),  # the hub alone here: these servers start without the organization
        ("/accounts/pairs/new", 200),
        ("/no-such-page", 404),
        ("/audit/events/999999999", 404),
    ]:
        check(page, url + path, found, status)
    wizard_pages(page, live_server, found)
    operation_pages(page, live_server, found)
    if not js:
        checker_context.close()
    assert found == {}, "\n".join(f"{u}:\n  " + "\n  ".join(f) for u, f in found.items())
