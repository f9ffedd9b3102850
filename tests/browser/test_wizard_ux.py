"""The wizard as a person who knows the IAM console uses it (issue 13), with JavaScript on and
off: the service picker (service, then use case, which sets the principal), keyboard focus
after "Add", discarding drafts, copy buttons, each step's answer in one response, and the
create's progress page on a server with real AWS's latency (ROLEDESK_SANDBOX_LATENCY_MS)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, follow_progress, sign_in, start_server
from tests.browser.test_accessibility import axe_findings
from tests.browser.wizard_steps import next_refused, open_step_one

S3_READ = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"


def pick_service(page, service: str, use_case: str | None) -> None:
    """Step 1 with the picker: the service, then (when it has several) the use case."""
    page.locator("#service-list").get_by_label(service, exact=True).check()
    if not page.js_enabled:  # without JavaScript the use cases come with a button
        page.get_by_role("button", name="Show use cases").click()
    cases = page.get_by_role("group", name=f"Use case for {service}")
    expect(cases).to_be_visible()
    if use_case is not None:
        cases.get_by_role("radio", name=use_case, exact=True).check()


def review_trust(page) -> dict:
    page.get_by_role("button", name="Next", exact=True).click()  # step 2, no policies
    expect(page.get_by_role("heading", level=1)).to_have_text("Name, review, and create")
    return json.loads(page.locator("#review-trust-json").text_content())


@pytest.mark.parametrize(
    ("service", "use_case", "principal", "suggestion"),
    [
        ("EC2", "EC2", "ec2.amazonaws.com", "AmazonSSMManagedInstanceCore"),
        ("Lambda", None, "lambda.amazonaws.com", "AWSLambdaBasicExecutionRole"),
        (
            "Elastic Container Service",
            "Elastic Container Service Task",
            "ecs-tasks.amazonaws.com",
            None,
        ),
    ],
    ids=["ec2", "lambda", "ecs-task"],
)
def test_service_picker_sets_the_principal(
    page, live_server, service, use_case, principal, suggestion
):
    open_step_one(page, live_server.url)
    assert page.get_by_label("Service principal").get_attribute("placeholder") is None
    pick_service(page, service, use_case)
    if use_case is None:  # a service with one use case has it chosen at once
        cases = page.get_by_role("group", name=f"Use case for {service}")
        expect(cases.get_by_role("radio", name=service, exact=True)).to_be_checked()
    expect(page.get_by_label("Service principal")).to_be_hidden()
    if page.js_enabled:
        expect(page.locator("#trust-json")).to_contain_text(f'"Service": "{principal}"')
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    if suggestion:
        expect(page.get_by_role("button", name=f"Add {suggestion}")).to_be_visible()
    assert review_trust(page)["Statement"][0]["Principal"] == {"Service": principal}


def test_search_finds_a_service_and_a_typed_principal_stays_possible(page, live_server):
    open_step_one(page, live_server.url)
    search = page.get_by_label("Find a service")
    search.fill("pod identity")
    if not page.js_enabled:
        page.get_by_role("button", name="Search services").click()
    services = page.locator("#service-list input[name=service_name]")
    expect(services).to_have_count(2)  # EKS, and "Another service"
    expect(page.get_by_label("EKS", exact=True)).to_be_visible()
    # A service outside the catalogue: its principal typed; a service's name is explained.
    page.get_by_label("Another service, not in this list").check()
    page.get_by_label("Service principal").fill("EC2")
    next_refused(page)
    expect(page.locator("#error-service")).to_contain_text("choose EC2 in the list above")
    page.get_by_label("Service principal").fill("codestar-connections.amazonaws.com")
    if page.js_enabled:  # the error goes as soon as the field is valid
        expect(page.locator("#error-service")).to_have_text("")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    principal = review_trust(page)["Statement"][0]["Principal"]
    assert principal == {"Service": "codestar-connections.amazonaws.com"}


# JavaScript only: without it the browser leaves the page on submit, the fields with it.
@pytest.mark.parametrize("anonymous_page", [True], ids=["js"], indirect=True)
def test_the_step_cannot_be_typed_into_while_next_is_on_its_way(page, live_server):
    """Next's answer replaces the whole step: text typed into the old fields while it was on
    its way was lost without a word. The fields are disabled until the answer is on the
    page (hx-disabled-elt), so typing visibly waits. Next's request is held here to look."""
    open_step_one(page, live_server.url)
    page.get_by_label("Another service, not in this list").check()
    principal = page.get_by_label("Service principal")
    principal.fill("EC2")  # refused: the same step comes back with its error
    held: list = []
    page.route(re.compile(r"/create-role/[^/]+/trust$"), lambda route: held.append(route))
    page.get_by_role("button", name="Next").click()
    for _ in range(100):  # the handler runs while Playwright waits
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    expect(principal).to_be_disabled()
    expect(page.get_by_label("Find a service")).to_be_disabled()
    expect(page.get_by_role("button", name="Next")).to_be_disabled()  # nor pressed twice
    held[0].continue_()
    expect(page.locator("#error-service")).to_contain_text("choose EC2 in the list above")
    expect(page.get_by_label("Service principal")).to_be_enabled()
    expect(page.get_by_label("Service principal")).to_have_value("EC2")


# JavaScript only: without it each Add loads the page again, at the chosen list.
@pytest.mark.parametrize("anonymous_page", [True], ids=["js"], indirect=True)
def test_focus_stays_with_the_policy_after_add_and_remove(page, live_server):
    open_step_one(page, live_server.url)
    pick_service(page, "Lambda", None)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Search policies by name").fill("AmazonS3ReadOnlyAccess")
    expect(page.locator("#policy-rows tr")).to_have_count(1)
    page.get_by_role("button", name="Add AmazonS3ReadOnlyAccess").click()
    chosen = page.locator("#chosen")
    expect(chosen.get_by_role("button", name="Remove AmazonS3ReadOnlyAccess")).to_be_visible()
    focused = page.locator(":focus")
    expect(focused).to_have_attribute("data-focus-key", f"toggle:{S3_READ}")
    expect(focused).to_have_text("Remove")
    page.keyboard.press("Enter")  # the same control, by keyboard: removes it again
    expect(chosen.locator("li")).to_have_count(0)
    expect(page.locator(":focus")).to_have_text("Add")
    # The chosen list is beside the table, in view without scrolling.
    assert chosen.bounding_box()["y"] < page.viewport_size["height"]


def test_discard_a_draft_from_its_step_and_from_the_list(page, live_server):
    page.on("dialog", lambda dialog: dialog.accept())
    open_step_one(page, live_server.url)
    pick_service(page, "Lambda", None)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    draft = page.url.split("/")[-2]
    page.get_by_role("button", name="Discard this draft").click()
    expect(page.get_by_role("status")).to_have_text("The draft was discarded.")
    expect(page.locator(f"a[href^='/create-role/{draft}/']")).to_have_count(0)
    # A second draft, discarded from the drafts list.
    page.get_by_role("button", name="Start a new role").click()
    pick_service(page, "Lambda", None)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    second = page.url.split("/")[-2]
    page.get_by_role("link", name="Create role", exact=True).click()
    row = page.locator("table.drafts tr", has=page.locator(f"a[href^='/create-role/{second}/']"))
    expect(row).to_contain_text("AWS service: lambda.amazonaws.com")
    row.get_by_role("button", name=re.compile("^Discard draft")).click()
    expect(page.locator(f"a[href^='/create-role/{second}/']")).to_have_count(0)
    response = page.goto(f"{live_server.url}/create-role/{second}/permissions")
    assert response is not None and response.status == 404
    page.console_errors[:] = [e for e in page.console_errors if "404" not in e]  # expected


def test_copy_button_copies_the_trust_policy(browser, live_server):
    from tests.browser.conftest import sign_in

    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.js_enabled = True
    sign_in(page, live_server, live_server.admin_name, live_server.admin_password)
    open_step_one(page, live_server.url)
    pick_service(page, "EC2", "EC2")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    page.get_by_role("button", name="Next", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Name, review, and create")
    block = page.locator("#review-trust-json")
    page.get_by_role("button", name="Copy Trust policy").click()
    expect(block.locator("xpath=../..").get_by_role("status")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert json.loads(copied) == json.loads(block.text_content())
    context.close()


# Without JavaScript only: the JavaScript case is test_copy_button_copies_the_trust_policy.
@pytest.mark.parametrize("anonymous_page", [False], ids=["no-js"], indirect=True)
def test_without_javascript_there_is_no_copy_button_that_cannot_work(page, live_server):
    page.goto(f"{live_server.url}/policy?arn={S3_READ}")
    expect(
        page.get_by_role("region", name="Policy document of AmazonS3ReadOnlyAccess")
    ).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Copy"))).to_have_count(0)


def test_each_step_answers_in_one_response(page, live_server):
    """JavaScript on: Next brings the next step in the answer to its POST (URL pushed), no
    redirect and second GET; without JavaScript, post/redirect/get."""
    open_step_one(page, live_server.url)
    pick_service(page, "Lambda", None)
    seen: list[str] = []
    page.on("request", lambda r: seen.append(f"{r.method} {r.url.split('/create-role')[-1]}"))
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    expect(page).to_have_url(re.compile(r"/create-role/[0-9a-f-]{36}/permissions$"))
    steps = [s for s in seen if "/static/" not in s and "preview" not in s and "picker" not in s]
    if page.js_enabled:
        assert steps == ["POST /new/trust"], steps
        expect(page.locator(":focus")).to_have_text("Add permissions")  # the new step's heading
    else:
        assert steps[0] == "POST /new/trust" and steps[1].startswith("GET /"), steps
        assert len(steps) == 2, steps


def test_long_trust_values_wrap_instead_of_being_cut_off(page, live_server):
    """The GitHub `repo:` condition (and any long value) wraps inside the preview's code
    block: nothing is hidden past its right edge, and the block takes keyboard focus."""
    open_step_one(page, live_server.url)
    page.locator("#entity-web_identity").check()
    page.get_by_label("Identity provider", exact=True).select_option(
        label="OIDC: token.actions.githubusercontent.com"
    )
    page.get_by_label("GitHub organisation").fill("an-organisation-with-a-rather-long-name")
    page.get_by_label("GitHub repository (* for every repository)").fill(
        "a-repository-whose-name-goes-on-and-on-for-a-while"
    )
    if not page.js_enabled:
        page.get_by_role("button", name="Update preview").click()
    block = page.get_by_role("region", name="Trust policy preview")
    expect(block).to_contain_text(
        "repo:an-organisation-with-a-rather-long-name/a-repository-whose-name-goes-on-and-on"
    )
    width = block.evaluate("pre => [pre.scrollWidth, pre.clientWidth]")
    assert width[0] <= width[1], width
    assert block.get_attribute("tabindex") == "0"


def test_policy_table_with_descriptions_stays_usable_at_1366_px(page, live_server):
    """Step 2 at 1366 x 900 with the Description column: the table fits its column (no
    sideways scrolling), each row's Add button is on screen, the chosen-policies summary stays
    beside the table, and a known policy shows AWS's description."""
    page.set_viewport_size({"width": 1366, "height": 900})
    open_step_one(page, live_server.url)
    pick_service(page, "Lambda", None)
    page.get_by_role("button", name="Next").click()
    # The first step 2 of a test session reads every managed policy from the sandbox (about
    # 1.5 s alone, much longer on a busy shared machine).
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions", timeout=30_000)
    search = page.get_by_label("Search policies by name")
    search.fill("Amazon")  # many rows, long names and long descriptions
    if not page.js_enabled:
        page.get_by_role("button", name="Search", exact=True).click()
    # Wait for the search's answer (with JavaScript it replaces the table as you type).
    expect(page.locator(".list-age")).to_contain_text("matching “Amazon”")
    table = page.locator("table.policy-table")
    expect(page.locator("#policy-rows tr")).to_have_count(20)
    expect(table.locator("thead th")).to_have_text(
        ["Policy name", "Type", "Description", "Actions"]
    )
    widths = table.evaluate("t => [t.scrollWidth, t.parentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    for box in (
        b.bounding_box() for b in table.get_by_role("button", name=re.compile("^Add ")).all()
    ):
        assert box is not None and box["x"] + box["width"] <= 1366, box
    aside = page.locator("#chosen").bounding_box()
    assert aside is not None and aside["x"] >= table.bounding_box()["x"] + widths[0] - 1
    search.fill("AmazonS3ReadOnlyAccess")
    if not page.js_enabled:
        page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#policy-rows tr")).to_have_count(1)
    expect(page.locator("#policy-rows td.policy-description")).to_have_text(
        "Provides read only access to all buckets via the AWS Management Console."
    )


# Each AWS call of this server waits this long, as a slow real AWS answers. A create of an EC2
# role is three call-times one after another (CreateRole; the instance profile; adding the role
# to it): far longer than the 0.3 s the create request waits before it shows the progress page
# (app/wizard/routes.py CREATE_WAIT_SECONDS).
SLOW_AWS_MS = 1500


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("slow"), {"ROLEDESK_SANDBOX_LATENCY_MS": str(SLOW_AWS_MS)}
    )
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_create_shows_its_calls_as_they_run_on_slow_aws(browser, slow_server, js):
    """Create role against AWS that answers in 1.5 s a call: with JavaScript the button is
    disabled at once; the progress page comes at once, before the first call has finished,
    and lists the calls with no accessibility failure (no timed reload without JavaScript:
    WCAG 2.2.1). It updates itself with JavaScript; without, "Check progress" brings news
    (its request waits for it), until the done page shows the role created, styled as
    success."""
    context = browser.new_context(java_script_enabled=js)
    page = context.new_page()
    page.js_enabled = js
    # axe checks a copy of the progress page in a page of its own (as without JavaScript):
    # the live page replaces itself within seconds, which would cut axe's run short.
    checker_context = browser.new_context(bypass_csp=True)
    sign_in(page, slow_server, slow_server.admin_name, slow_server.admin_password)
    open_step_one(page, slow_server.url)
    pick_service(page, "EC2", "EC2")
    page.get_by_role("button", name="Next").click()
    # Step 2 reads every managed policy once (about 13 pages, each a slow call).
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Add permissions", timeout=90_000)
    page.get_by_role("button", name="Next", exact=True).click()
    expect(heading).to_have_text("Name, review, and create", timeout=30_000)
    name = f"slow-create-{'js' if js else 'nojs'}"
    page.get_by_label("Role name").fill(name)
    create = page.get_by_role("button", name="Create role", exact=True)
    create.click(no_wait_after=True)
    if js:  # pressed once: a second press cannot be made while the create runs
        expect(create).to_be_disabled(timeout=2_000)
    expect(heading).to_have_text("Creating the role…", timeout=30_000)
    html = page.content()  # the progress page as it was shown
    snapshot = SimpleNamespace(
        js_enabled=False, content=lambda: html, url=page.url, checker=checker_context.new_page()
    )
    table = page.locator("table.operation-steps")
    expect(table).to_contain_text("Add the role to the instance profile")
    if not js:  # the page as the server answered Create: shown before CreateRole answered
        expect(page.get_by_role("status").first).to_contain_text("0 of 3 AWS calls finished")
        expect(page.get_by_role("row", name=re.compile("^Create the role"))).to_contain_text(
            re.compile("In progress|Waiting")
        )
    statuses = [s.strip() for s in table.locator(".step-status").all_text_contents()]
    assert any(s in ("Waiting", "In progress") for s in statuses), statuses
    status = page.get_by_role("status").first
    if js:
        expect(status).to_contain_text("This page updates by itself")
    else:
        expect(status).not_to_contain_text("updates by itself", use_inner_text=True)
        expect(page.get_by_role("button", name="Check progress")).to_be_visible()
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    findings = axe_findings(snapshot)
    assert findings == [], findings
    # With JavaScript the page updates itself; without, "Check progress" until created.
    follow_progress(page, page.locator(".result-success h1"))
    expect(page.locator(".result-success h1")).to_have_text(f"✓ Role {name} created")
    expect(page.locator("#role-arn")).to_have_text(re.compile(f":role/{name}$"))
    checker_context.close()
    context.close()
