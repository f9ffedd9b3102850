"""Policy checks in Chromium (issue 10): findings appear as the person types (JavaScript on,
debounced htmx) or when the step is sent (JavaScript off), and Create role is accepted only
once each security warning is ticked."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.wizard_steps import open_step_one

ANYONE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}


def test_findings_live_or_on_send_and_the_acknowledgement_gate(live_server, page):
    name = f"anyone-{'js' if page.js_enabled else 'nojs'}"
    open_step_one(page, live_server.url)
    page.locator("#entity-custom").check()
    editor = page.get_by_label("Trust policy JSON")
    findings = page.locator("#custom-policy-findings")
    if page.js_enabled:
        step_one = page.url
        editor.fill(json.dumps(ANYONE, indent=2)[:-1])
        editor.press("End")
        page.keyboard.type("}")  # a key press: the live check runs 500 ms later
        expect(findings).to_contain_text("TRUST_ANY_PRINCIPAL")
        assert page.url == step_one  # nothing was sent but the check
    else:
        editor.fill(json.dumps(ANYONE, indent=2))
        page.get_by_role("button", name="Update preview").click()
        expect(findings).to_contain_text("TRUST_ANY_PRINCIPAL")
    expect(findings.locator("li.finding-security_warning")).to_have_count(1)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    page.get_by_role("button", name="Next", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Name, review, and create")
    page.get_by_label("Role name").fill(name)
    page.get_by_role("button", name="Create role").click()
    expect(page.locator("#error-acknowledge")).to_contain_text("Acknowledge each security warning")
    page.get_by_label("I accept the risk TRUST_ANY_PRINCIPAL in Trust policy").check()
    page.get_by_role("button", name="Create role").click()
    expect(page.locator("#role-arn")).to_have_text(f"arn:aws:iam::123456789012:role/{name}")
    role = live_server.boto3_client("iam").get_role(RoleName=name)["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"AWS": "*"}
