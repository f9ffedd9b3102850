"""Changing roles from their pages in Chromium, with and without JavaScript: edit the trust
policy, rebuild it with the trusted-entity forms, attach and detach, edit an inline policy,
tags, delete with typed confirmation, bulk delete of three roles, revoke sessions. Each result
is checked with boto3 in the sandbox."""

from __future__ import annotations

import json
import uuid

from playwright.sync_api import expect

from tests.browser.conftest import follow_progress

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def new_role(iam, prefix, **extra):
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST), **extra)
    return name


def review_and_apply(page):
    page.get_by_role("button", name="Review the change").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Review the change")
    page.get_by_role("button", name="Apply changes").click()


def test_edit_the_trust_policy(live_server, page):
    iam = live_server.boto3_client("iam")
    name = new_role(iam, "trust")
    page.goto(f"{live_server.url}/roles/{name}")
    page.get_by_role("link", name="Edit trust policy").click()
    changed = json.loads(page.get_by_label("Trust policy (JSON)").input_value())
    changed["Statement"][0]["Principal"] = {"Service": "lambda.amazonaws.com"}
    page.get_by_label("Trust policy (JSON)").fill(json.dumps(changed, indent=2))
    page.get_by_role("button", name="Review the change").click()
    expect(page.locator("#change-diff")).to_contain_text("lambda.amazonaws.com")
    page.get_by_role("button", name="Apply changes").click()
    expect(page.locator("#trust")).to_contain_text("AWS service: lambda")
    doc = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    assert doc["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_rebuild_the_trust_policy_with_the_trusted_entity_forms(live_server, page):
    iam = live_server.boto3_client("iam")
    name = new_role(iam, "rebuild")
    partner = "210987654321"
    page.goto(f"{live_server.url}/roles/{name}")
    page.get_by_role("link", name="Rebuild with the trusted-entity forms").click()
    # Prefilled from the current document: an AWS service, EC2.
    expect(page.locator("#entity-service")).to_be_checked()
    expect(page.locator("#trust-json")).to_contain_text("ec2.amazonaws.com")
    page.locator("#entity-account").check()
    page.get_by_role("radio", name="Another AWS account").check()
    page.get_by_label("Account ID (for another AWS account)").fill(partner)
    page.get_by_label("Require external ID").check()
    page.get_by_label("External ID", exact=True).fill("partner-42")
    page.get_by_role("button", name="Review the change").click()
    expect(page.locator("#change-diff")).to_contain_text(partner)
    for box in page.locator('#change-risks input[name="acknowledge"]').all():
        box.check()
    page.get_by_role("button", name="Apply changes").click()
    expect(page.locator("#trust")).to_contain_text(f"Account: {partner}")
    doc = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    statement = doc["Statement"][0]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{partner}:root"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "partner-42"}}


def test_attach_and_detach(live_server, page):
    iam = live_server.boto3_client("iam")
    name = new_role(iam, "perm")
    iam.attach_role_policy(RoleName=name, PolicyArn=READ_ONLY)
    page.goto(f"{live_server.url}/roles/{name}")
    page.get_by_role("link", name="Attach or detach policies").click()
    page.get_by_label("Search policies by name").fill("AmazonS3ReadOnlyAccess")
    page.get_by_role("button", name="Search").click()
    page.get_by_label("Attach AmazonS3ReadOnlyAccess", exact=True).check()
    page.get_by_label("Detach ReadOnlyAccess", exact=True).check()
    review_and_apply(page)
    expect(page.locator("#permissions")).to_contain_text("AmazonS3ReadOnlyAccess")
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonS3ReadOnlyAccess"]


def test_edit_an_inline_policy(live_server, page):
    iam = live_server.boto3_client("iam")
    name = new_role(iam, "inline")
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="reader", PolicyDocument=json.dumps(doc))
    page.goto(f"{live_server.url}/roles/{name}/inline/edit?policy=reader")
    doc["Statement"][0]["Action"] = "s3:ListBucket"
    page.get_by_label("Policy document (JSON)").fill(json.dumps(doc, indent=2))
    review_and_apply(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    assert iam.get_role_policy(RoleName=name, PolicyName="reader")["PolicyDocument"] == doc


def test_tags(live_server, page):
    iam = live_server.boto3_client("iam")
    name = new_role(iam, "tags", Tags=[{"Key": "team", "Value": "a"}])
    page.goto(f"{live_server.url}/roles/{name}")
    page.get_by_role("link", name="Edit tags").click()
    page.get_by_label("Value 1").fill("b")
    page.get_by_label("Key 2").fill("env")
    page.get_by_label("Value 2").fill("prod")
    page.get_by_role("button", name="Review the change").click()
    expect(page.locator("#change-add")).to_contain_text("env = prod")
    page.get_by_role("button", name="Apply changes").click()
    expect(page.locator("#tags")).to_contain_text("prod")
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
    assert tags == {"team": "b", "env": "prod"}


def test_delete_with_typed_confirmation(live_server, page):
    iam = live_server.boto3_client("iam")
    name = new_role(iam, "doomed")
    iam.attach_role_policy(RoleName=name, PolicyArn=READ_ONLY)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    page.goto(f"{live_server.url}/roles/{name}")
    page.get_by_role("link", name="Delete role").click()
    expect(page.locator("#blast-radius")).to_contain_text("ReadOnlyAccess")
    page.get_by_label("Type the role name").fill(name)
    page.get_by_role("button", name="Delete role").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Roles")
    assert name not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    profiles = iam.list_instance_profiles()["InstanceProfiles"]
    assert name not in [p["InstanceProfileName"] for p in profiles]


def test_bulk_delete_of_three_roles(live_server, page):
    iam = live_server.boto3_client("iam")
    prefix = f"bulk{uuid.uuid4().hex[:4]}"
    names = [new_role(iam, prefix) for _ in range(3)]
    page.goto(f"{live_server.url}/roles")
    page.get_by_role("button", name="Refresh list").click()
    page.goto(f"{live_server.url}/roles?q={prefix}")
    for name in names:
        page.get_by_label(f"Select {name}").check()
    page.get_by_role("button", name="Delete selected roles").click()
    expect(page.locator("#bulk-radius tbody tr")).to_have_count(3)
    page.get_by_label("Type delete to delete these 3 roles").fill("delete")
    page.get_by_role("button", name="Delete 3 roles").click()
    follow_progress(page, page.locator(".outcome-summary", has_text="Done."), timeout=15)
    left = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert not left & set(names)


def test_revoke_sessions(live_server, page):
    iam = live_server.boto3_client("iam")
    name = new_role(iam, "revoke")
    page.goto(f"{live_server.url}/roles/{name}")
    page.get_by_role("link", name="Revoke active sessions").click()
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Revoke active sessions").click()
    doc = iam.get_role_policy(RoleName=name, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    when = doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    expect(page.locator("#last-revoked")).to_have_text(when)
