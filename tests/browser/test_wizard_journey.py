"""Create-role journeys in Chromium: one per trusted-entity type (JavaScript on: live preview,
search as you type) and a full journey with JavaScript on and off, each ending with the role
checked through boto3 against the sandbox endpoint."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import is_console_error, sign_in
from tests.browser.wizard_steps import next_refused, open_step_one


@pytest.fixture
def js_page(browser, live_server):
    """JavaScript on only (the per-type journeys), signed in as the admin; fails on console
    errors."""
    context = browser.new_context()
    tab = context.new_page()
    tab.js_enabled = True  # type: ignore[attr-defined]  # as anonymous_page marks its tabs
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if is_console_error(m) else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(tab, live_server, live_server.admin_name, live_server.admin_password)
    yield tab
    context.close()
    assert errors == [], errors


def begin(page, live_server):
    open_step_one(page, live_server.url)


def finish(page, name):
    page.get_by_role("button", name="Next").click()  # step 2: no policies
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    page.get_by_role("button", name="Next", exact=True).click()
    page.get_by_label("Role name").fill(name)
    page.get_by_role("button", name="Create role").click()
    expect(page.locator("#role-arn")).to_have_text(f"arn:aws:iam::123456789012:role/{name}")


def trust_of(live_server, name):
    role = live_server.boto3_client("iam").get_role(RoleName=name)["Role"]
    return role["AssumeRolePolicyDocument"]["Statement"][0]


def test_full_journey_with_and_without_javascript(live_server, page):
    name = f"journey-ec2-{'js' if page.js_enabled else 'nojs'}"
    begin(page, live_server)
    page.get_by_label("Service principal").fill("ec2.amazonaws.com")
    if page.js_enabled:  # the preview follows the fields as they change
        expect(page.locator("#trust-json")).to_contain_text('"Service": "ec2.amazonaws.com"')
    else:  # without JavaScript the preview comes with "Update preview"
        page.get_by_role("button", name="Update preview").click()
        expect(page.locator("#trust-json")).to_contain_text('"Service": "ec2.amazonaws.com"')
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add permissions")
    page.get_by_role("button", name="Add AmazonSSMManagedInstanceCore").first.click()
    search = page.get_by_label("Search policies by name")
    if page.js_enabled:
        search.press_sequentially("AmazonS3ReadOnly", delay=20)
    else:
        search.fill("AmazonS3ReadOnly")
        page.get_by_role("button", name="Search").click()
    expect(page.locator("#policy-rows tr")).to_have_count(1)
    page.get_by_role("button", name="Add AmazonS3ReadOnlyAccess").click()
    expect(page.locator("#chosen li")).to_have_count(2)
    page.get_by_role("link", name="View AmazonS3ReadOnlyAccess").click()
    expect(page.locator("#policy-document")).to_contain_text("s3:Get*")
    page.get_by_role("button", name="Next", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Name, review, and create")
    # A name taken in another case: refused by RoleDesk (moto would accept it).
    page.get_by_label("Role name").fill("WEB-APP-EC2")
    page.get_by_role("button", name="Create role").click()
    expect(page.locator("#error-name")).to_contain_text("already exists")
    page.get_by_label("Role name").fill(name)
    page.get_by_label("Tag 1 key").fill("team")
    page.get_by_label("Tag 1 value").fill("web")
    page.get_by_role("button", name="Create role").click()
    expect(page.locator("#role-arn")).to_have_text(f"arn:aws:iam::123456789012:role/{name}")
    expect(page.get_by_role("link", name="Attach this role to an EC2 instance")).to_be_visible()
    expect(page.locator("#cli-commands")).to_contain_text(f"aws iam create-role --role-name {name}")
    iam = live_server.boto3_client("iam")
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert sorted(p["PolicyName"] for p in attached) == [
        "AmazonS3ReadOnlyAccess",
        "AmazonSSMManagedInstanceCore",
    ]
    profiles = iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]
    assert [p["InstanceProfileName"] for p in profiles] == [name]
    assert iam.list_role_tags(RoleName=name)["Tags"] == [{"Key": "team", "Value": "web"}]
    assert trust_of(live_server, name)["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_aws_account_journey(live_server, js_page):
    page = js_page
    begin(page, live_server)
    page.locator("#entity-account").check()
    page.get_by_label("Another AWS account", exact=True).check()
    page.get_by_label("Account ID (for another AWS account)").fill("444455556666")
    page.get_by_label("Require external ID").check()
    page.get_by_label("External ID", exact=True).fill("partner-7")
    page.get_by_label("Require MFA").check()
    expect(page.locator("#trust-json")).to_contain_text("aws:MultiFactorAuthPresent")
    finish(page, "journey-account")
    statement = trust_of(live_server, "journey-account")
    assert statement["Principal"] == {"AWS": "arn:aws:iam::444455556666:root"}
    assert statement["Condition"] == {
        "StringEquals": {"sts:ExternalId": "partner-7"},
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
    }


def test_web_identity_github_journey(live_server, js_page):
    page = js_page
    begin(page, live_server)
    page.locator("#entity-web_identity").check()
    page.get_by_label("Identity provider", exact=True).select_option(
        label="OIDC: token.actions.githubusercontent.com"
    )
    page.get_by_label("GitHub organisation").fill("example-org")
    page.get_by_label("GitHub repository").fill("shop")
    page.get_by_label("GitHub branch (optional)").fill("main")
    expect(page.locator("#trust-json")).to_contain_text("repo:example-org/shop:ref:refs/heads/main")
    finish(page, "journey-github")
    statement = trust_of(live_server, "journey-github")
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert (
        statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        == "repo:example-org/shop:ref:refs/heads/main"
    )


def test_saml_journey(live_server, js_page):
    page = js_page
    begin(page, live_server)
    page.locator("#entity-saml").check()
    page.get_by_label("SAML 2.0 provider").select_option(label="CorpOkta")
    page.get_by_label("Allow programmatic and AWS Management Console access").check()
    expect(page.locator("#trust-json")).to_contain_text("https://signin.aws.amazon.com/saml")
    finish(page, "journey-saml")
    statement = trust_of(live_server, "journey-saml")
    assert statement["Principal"]["Federated"].endswith(":saml-provider/CorpOkta")
    assert statement["Condition"] == {
        "StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}
    }


def test_custom_trust_policy_journey_with_line_and_column_error(live_server, js_page):
    page = js_page
    begin(page, live_server)
    page.locator("#entity-custom").check()
    editor = page.get_by_label("Trust policy JSON")
    editor.fill(
        '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Allow",\n'
        '     "Principal": {"Service": "lambda.amazonaws.com"},\n'
        '     "Action": "sts:AssumeRole", "Resource": "*"}]}'
    )
    next_refused(page)
    expect(page.locator("#error-custom_policy")).to_contain_text("Line 6, column 34")
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
    editor.fill(json.dumps(document, indent=2))
    expect(page.locator("#trust-json")).to_contain_text("sts:TagSession")
    finish(page, "journey-custom")
    assert trust_of(live_server, "journey-custom")["Action"] == ["sts:AssumeRole", "sts:TagSession"]


def test_aws_service_journey_lambda(live_server, js_page):
    page = js_page
    begin(page, live_server)
    page.get_by_label("Service principal").fill("lambda.amazonaws.com")
    expect(page.locator(".use-cases")).to_contain_text("Lambda")
    finish(page, "journey-lambda")
    assert trust_of(live_server, "journey-lambda")["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }
    iam = live_server.boto3_client("iam")
    assert iam.list_instance_profiles_for_role(RoleName="journey-lambda")["InstanceProfiles"] == []
