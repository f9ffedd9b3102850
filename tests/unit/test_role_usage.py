"""'Use this role' is generated from the role's actual trust policy."""

from __future__ import annotations

from datetime import UTC, datetime

from app.aws.types import Role
from app.roles.usage import usages
from app.wizard.trust import service_trust


def role(trust):
    return Role("app", "AROAX", "arn:aws:iam::123456789012:role/app", "/", datetime.now(UTC), trust)


def statement(principal, condition=None):
    st = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        st["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [st]}


def test_ec2_role_gets_the_boto3_snippet():
    [found] = usages(role(service_trust("ec2.amazonaws.com")), "us-east-1")
    assert found.kind == "ec2" and "boto3.Session()" in found.snippet


def test_other_account_gets_profile_and_command_with_external_id_and_mfa():
    trust = statement(
        {"AWS": "arn:aws:iam::111122223333:root"},
        {
            "StringEquals": {"sts:ExternalId": "ext-42"},
            "Bool": {"aws:MultiFactorAuthPresent": "true"},
        },
    )
    [found] = usages(role(trust), "us-east-1")
    assert "role_arn = arn:aws:iam::123456789012:role/app" in found.snippet
    assert "external_id = ext-42" in found.snippet and "--external-id ext-42" in found.snippet
    assert "mfa_serial" in found.snippet and "--serial-number" in found.snippet


def test_github_actions_gets_the_workflow_step():
    trust = statement(
        {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}
    )
    [found] = usages(role(trust), "eu-west-1")
    assert "aws-actions/configure-aws-credentials" in found.snippet
    assert "id-token: write" in found.snippet and "aws-region: eu-west-1" in found.snippet


def test_saml_gets_the_sign_in_entry_point():
    provider = "arn:aws:iam::123456789012:saml-provider/Okta"
    [found] = usages(role(statement({"Federated": provider})), "us-east-1")
    assert "https://signin.aws.amazon.com/saml" in found.snippet
    assert f"arn:aws:iam::123456789012:role/app,{provider}" in found.snippet


def test_deny_statements_and_no_principal_give_nothing():
    trust = statement({"Service": "ec2.amazonaws.com"})
    trust["Statement"][0]["Effect"] = "Deny"
    assert usages(role(trust), "us-east-1") == []
