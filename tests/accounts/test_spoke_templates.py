"""The spoke role's CloudFormation template and its Terraform twin stay in step with the
policy RoleDesk generates from its declared calls, and trust only the hub role from inside
the organization."""

import json
import re
from pathlib import Path

import yaml

from app.accounts.spoke import SPOKE_POLICY_NAME, spoke_policy
from app.aws.calls import hub_statements

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_cloudformation_role_holds_exactly_the_generated_policy_and_trust():
    template = yaml.safe_load((DOCS / "spoke-role.cfn.yaml").read_text())
    (role,) = template["Resources"].values()
    assert role["Type"] == "AWS::IAM::Role"
    props = role["Properties"]
    assert props["Policies"] == [
        {"PolicyName": SPOKE_POLICY_NAME, "PolicyDocument": spoke_policy()}
    ]
    assert spoke_policy() == json.loads((DOCS / "required-permissions.json").read_text())
    assert props["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": {"Ref": "HubRoleArn"}},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}},
        }
    ]
    assert template["Parameters"]["RoleName"]["Default"] == "RoleDeskAccess"


def test_the_terraform_twin_reads_the_generated_policy_and_has_the_same_trust():
    text = (DOCS / "spoke-role.tf").read_text()
    assert 'policy = file("${path.module}/required-permissions.json")' in text
    assert f'name   = "{SPOKE_POLICY_NAME}"' in text
    trust = text[text.index('data "aws_iam_policy_document" "trust"') :]
    trust = trust[: trust.index("\n}\n")]
    assert re.search(r'actions = \["sts:AssumeRole"\]', trust)
    assert re.search(r"identifiers = \[var\.hub_role_arn\]", trust)
    assert re.search(
        r'variable = "aws:PrincipalOrgID"\s+values\s+= \[var\.organization_id\]', trust
    )
    assert trust.count("statement {") == 1 and trust.count("principals {") == 1
    assert re.search(r'variable "role_name" \{[^}]*default\s+= "RoleDeskAccess"', text)


def test_the_hub_may_assume_only_the_spoke_role_and_read_the_organization():
    statements = {s["Sid"]: s for s in hub_statements("RoleDeskAccess")}
    assert statements["RoleDeskAssumeSpokeRole"]["Action"] == ["sts:AssumeRole"]
    assert statements["RoleDeskAssumeSpokeRole"]["Resource"] == "arn:aws:iam::*:role/RoleDeskAccess"
    assert statements["RoleDeskOrganization"]["Action"] == [
        "organizations:DescribeOrganization",
        "organizations:ListAccounts",
    ]
    spoke_actions = {a for s in spoke_policy()["Statement"] for a in s["Action"]}
    assert spoke_actions.isdisjoint({"sts:AssumeRole", "organizations:ListAccounts"})
