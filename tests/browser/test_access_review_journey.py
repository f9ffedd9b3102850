"""The access review in Chromium, with and without JavaScript: open it (the scan's progress,
then the roles), filter unused roles, record a review, delete the two unused roles through
the bulk delete, see them gone and audited; axe-core over the review's pages on the way.

Each variant has its own server: the journey deletes the seed's two unused roles, which only
time could make again (the sandbox seed dates them back)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    LiveServer,
    assert_header_fits,
    follow_progress,
    sign_in,
    start_server,
)
from tests.browser.test_accessibility import AXE, axe_findings, wider_than_narrow_window

UNUSED = ["legacy-build-server", "old-data-migration"]


@pytest.fixture
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    # A server per variant: on the shared 2-core machine, seeding can take over a minute.
    server = start_server(tmp_path_factory.mktemp("review"), start_timeout=240)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


def open_review(page: Page, url: str) -> None:
    """The review page once the scan has finished: htmx reloads it, or without JavaScript
    the person presses "Check progress" (the page never reloads itself: WCAG 2.2.1)."""
    page.goto(url)
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    follow_progress(page, page.locator("table.review"), timeout=90)


def unused_rows(page: Page) -> list[str]:
    return page.locator("table.review td.role-name > a").all_inner_texts()


def axe_pages(browser, server: LiveServer, js: bool) -> dict[str, list[str]]:
    assert AXE.exists(), f"{AXE} is missing: run `npm ci` (make static)"
    context = browser.new_context(
        java_script_enabled=js, bypass_csp=True, viewport={"width": 1366, "height": 900}
    )
    checker_context = browser.new_context(bypass_csp=True, viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.js_enabled = js  # type: ignore[attr-defined]
        page.checker = checker_context.new_page()  # type: ignore[attr-defined]
        sign_in(page, server, server.admin_name, server.admin_password)
        # With the "Access review" link, the header's items still share one row at 1366 px.
        assert_header_fits(page)
        found = {}
        for path in (
            "/access-review?kind=unused",
            "/access-review/roles/old-data-migration",
            "/access-review/findings",
        ):
            page.goto(server.url + path)
            if findings := axe_findings(page) + wider_than_narrow_window(page):
                found[path] = findings
        page.goto(server.url + "/access-review?days=0")  # a refused filter, error beside it
        if findings := axe_findings(page) + wider_than_narrow_window(page):
            found["/access-review?days=0"] = findings
        return found
    finally:
        context.close()
        checker_context.close()


def test_review_filter_record_and_delete_two_unused_roles(live_server, page, browser):
    url = live_server.url
    open_review(page, f"{url}/access-review")
    page.get_by_label("Finding", exact=True).select_option(label="Unused")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("table.review td.role-name > a")).to_have_count(2)
    assert sorted(unused_rows(page)) == UNUSED
    assert axe_pages(browser, live_server, page.js_enabled) == {}  # type: ignore[attr-defined]

    page.get_by_role("link", name="Review old-data-migration").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Review old-data-migration")
    page.get_by_label("Reviewed: remove").check()
    page.get_by_label("Note (why; what should change)").fill("Migration finished in 2025.")
    page.get_by_role("button", name="Record the review").click()
    expect(page.locator("#history")).to_contain_text("Reviewed: remove")
    expect(page.locator("#history")).to_contain_text("Migration finished in 2025.")

    page.goto(f"{url}/access-review?kind=unused")
    for name in UNUSED:
        page.get_by_label(f"Select {name}").check()
    page.get_by_role("button", name="Delete selected roles").click()
    expect(page.locator("#bulk-radius tbody tr")).to_have_count(2)
    page.get_by_label("Type delete to delete these 2 roles").fill("delete")
    page.get_by_role("button", name="Delete 2 roles").click()
    follow_progress(page, page.locator(".outcome-summary", has_text="Done."), timeout=30)

    page.goto(f"{url}/access-review?kind=unused")
    expect(page.locator("table.review")).to_contain_text("No roles match these filters.")
    iam = live_server.boto3_client("iam")
    left = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert not left & set(UNUSED)
    page.goto(f"{url}/audit")
    history = page.locator("main")
    for name in UNUSED:
        expect(history).to_contain_text(re.compile(rf"DeleteRole.*{name}|{name}.*DeleteRole", re.S))
    expect(history).to_contain_text("roledesk:RecordAccessReview")
