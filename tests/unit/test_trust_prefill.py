"""Recognising an existing trust policy as one of step 1's five forms (app.wizard.trust_prefill):
each builder's document comes back as its form values, which build the same document again;
documents the forms cannot express open the custom editor with the document unchanged."""

from __future__ import annotations

import json

import pytest

from app.wizard import trust
from app.wizard.trust_prefill import form_values

ACCOUNT = "123456789012"
OTHER = "210987654321"
GITHUB = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{trust.GITHUB_HOST}"
OIDC = f"arn:aws:iam::{ACCOUNT}:oidc-provider/login.example.com"
SAML = f"arn:aws:iam::{ACCOUNT}:saml-provider/Corp"
PROVIDERS = trust.Providers(ACCOUNT, (GITHUB, OIDC), (SAML,))


def rebuilt(values):
    result = trust.build_trust(values, PROVIDERS)
    assert not result.errors, result.errors
    return result.policy


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            trust.service_trust("ec2.amazonaws.com"),
            {"entity_type": "service", "service": "ec2.amazonaws.com", "service_name": "EC2"},
        ),
        (
            trust.service_trust("codestar-connections.amazonaws.com"),  # not in the catalogue
            {"entity_type": "service", "service": "codestar-connections.amazonaws.com"},
        ),
        (
            trust.service_trust(trust.EKS_POD_IDENTITY),  # AssumeRole and TagSession
            {"entity_type": "service", "service": trust.EKS_POD_IDENTITY},
        ),
        (trust.account_trust(ACCOUNT), {"entity_type": "account", "account_choice": "this"}),
        (
            trust.account_trust(OTHER, "ext-42", require_mfa=True),
            {
                "account_choice": "other",
                "account_id": OTHER,
                "require_external_id": "1",
                "external_id": "ext-42",
                "require_mfa": "1",
            },
        ),
        (
            trust.web_identity_trust("cognito", "us-east-1:0f3c1e4e-5a1b", "unauthenticated"),
            {"web_provider": "cognito", "cognito_amr": "unauthenticated"},
        ),
        (trust.web_identity_trust("google", "client-1"), {"web_provider": "google"}),
        (trust.oidc_trust(OIDC, "my-app"), {"web_provider": OIDC, "audience": "my-app"}),
        (
            trust.github_trust(GITHUB, "octo-org", "deploy", "main"),
            {"github_org": "octo-org", "github_repo": "deploy", "github_branch": "main"},
        ),
        (
            trust.github_trust(GITHUB, "octo-org", "*"),
            {"github_org": "octo-org", "github_repo": "*", "github_branch": ""},
        ),
        (
            trust.saml_trust(SAML, True),
            {"entity_type": "saml", "saml_provider": SAML, "saml_access": "console"},
        ),
        (
            trust.saml_trust(SAML, True, [("SAML:sub_type", "persistent")], "eu-west-1"),
            {"saml_region": "eu-west-1", "saml_attribute": "SAML:sub_type"},
        ),
        (
            trust.saml_trust(SAML, False, [("SAML:sub_type", "persistent")]),
            {"saml_access": "programmatic", "saml_value": "persistent"},
        ),
    ],
)
def test_each_form_is_recognised_and_builds_the_same_document(document, expected):
    values = form_values(document, PROVIDERS)
    assert values["entity_type"] != "custom"
    assert expected.items() <= values.items()
    assert rebuilt(values) == document


def test_the_same_document_as_json_text_and_with_lists_and_a_sid():
    document = trust.account_trust(OTHER, "ext-42")
    statement = document["Statement"][0]
    variant = {
        **document,
        "Statement": {
            **statement,
            "Sid": "FromPartner",
            "Action": ["sts:AssumeRole"],
            "Principal": {"AWS": [statement["Principal"]["AWS"]]},
        },
    }
    values = form_values(json.dumps(variant), PROVIDERS)
    assert values["entity_type"] == "account" and values["external_id"] == "ext-42"


@pytest.mark.parametrize(
    "document",
    [
        # Two statements
        {
            "Version": "2012-10-17",
            "Statement": [
                trust.service_trust("ec2.amazonaws.com")["Statement"][0],
                trust.service_trust("lambda.amazonaws.com")["Statement"][0],
            ],
        },
        # A condition the account form has no field for
        {
            **trust.account_trust(OTHER),
            "Statement": [
                {
                    **trust.account_trust(OTHER)["Statement"][0],
                    "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}},
                }
            ],
        },
        # A role ARN, not an account
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{OTHER}:role/deployer"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        # A SAML provider this account does not have, and a Deny
        trust.saml_trust(f"arn:aws:iam::{ACCOUNT}:saml-provider/Gone", True),
        {
            "Version": "2012-10-17",
            "Statement": [
                {**trust.service_trust("ec2.amazonaws.com")["Statement"][0], "Effect": "Deny"}
            ],
        },
        # An OIDC provider's sub condition (the OIDC form sets the audience only)
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    **trust.oidc_trust(OIDC, "app")["Statement"][0],
                    "Condition": {
                        "StringEquals": {
                            "login.example.com:aud": "app",
                            "login.example.com:sub": "x",
                        }
                    },
                }
            ],
        },
        "not json at all",
    ],
    ids=[
        "two-statements",
        "source-ip",
        "role-principal",
        "unknown-saml",
        "deny",
        "oidc-sub",
        "text",
    ],
)
def test_anything_else_opens_the_custom_editor_with_the_document_unchanged(document):
    values = form_values(document, PROVIDERS)
    assert values["entity_type"] == "custom"
    text = values["custom_policy"]
    assert (text if isinstance(document, str) else json.loads(text)) == document
