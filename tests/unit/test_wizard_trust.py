"""Trust policies per trusted-entity type and option, compared with the console's documented
shapes (aws-iam-behaviour.md A1)."""

from __future__ import annotations

import json

import pytest

from app.wizard import catalog
from app.wizard.trust import CUSTOM_TEMPLATE, Providers, build_trust

ACCOUNT = "123456789012"
GITHUB = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
OKTA_OIDC = f"arn:aws:iam::{ACCOUNT}:oidc-provider/example.okta.com/oauth2/default"
SAML = f"arn:aws:iam::{ACCOUNT}:saml-provider/CorpOkta"
PROVIDERS = Providers(ACCOUNT, (GITHUB, OKTA_OIDC), (SAML,))


def only_statement(values):
    result = build_trust(values, PROVIDERS)
    assert result.errors == {}, result.errors
    assert result.policy["Version"] == "2012-10-17"
    assert len(result.policy["Statement"]) == 1
    return result.policy["Statement"][0]


def test_aws_service_matches_console_shape():
    assert only_statement({"entity_type": "service", "service": "lambda.amazonaws.com"}) == {
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }


def test_service_outside_the_catalogue_is_allowed_with_a_warning():
    result = build_trust({"entity_type": "service", "service": "newthing.amazonaws.com"}, PROVIDERS)
    assert result.errors == {} and result.policy is not None
    [finding] = result.findings
    assert finding.level == "warning" and "not in RoleDesk's service catalogue" in finding.message
    known = build_trust({"entity_type": "service", "service": "ec2.amazonaws.com"}, PROVIDERS)
    assert known.findings == []


@pytest.mark.parametrize("bad", ["EC2.amazonaws.com", "ec2", "ec2.amazonaws.com ; x", ""])
def test_bad_service_principal_is_refused(bad):
    result = build_trust({"entity_type": "service", "service": bad}, PROVIDERS)
    assert "service" in result.errors and result.policy is None


def test_this_account():
    assert only_statement({"entity_type": "account", "account_choice": "this"}) == {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole",
    }


def test_other_account_with_external_id_and_mfa():
    statement = only_statement(
        {
            "entity_type": "account",
            "account_choice": "other",
            "account_id": "444455556666",
            "require_external_id": "1",
            "external_id": "Partner-42",
            "require_mfa": "1",
        }
    )
    assert statement == {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
        "Action": "sts:AssumeRole",
        "Condition": {
            "StringEquals": {"sts:ExternalId": "Partner-42"},
            "Bool": {"aws:MultiFactorAuthPresent": "true"},
        },
    }


def test_external_id_only_and_mfa_only():
    ext = only_statement(
        {
            "entity_type": "account",
            "account_choice": "this",
            "require_external_id": "1",
            "external_id": "ab",
        }
    )
    assert ext["Condition"] == {"StringEquals": {"sts:ExternalId": "ab"}}
    mfa = only_statement({"entity_type": "account", "account_choice": "this", "require_mfa": "1"})
    assert mfa["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"account_choice": "other", "account_id": "12345"}, "account_id"),
        ({"account_choice": "other", "account_id": "12345678901a"}, "account_id"),
        ({"account_choice": "this", "require_external_id": "1", "external_id": "a"}, "external_id"),
        (
            {"account_choice": "this", "require_external_id": "1", "external_id": "has space"},
            "external_id",
        ),
        (
            {"account_choice": "this", "require_external_id": "1", "external_id": "x" * 1225},
            "external_id",
        ),
        ({"account_choice": "nobody"}, "account_choice"),
    ],
)
def test_account_errors(values, field):
    result = build_trust({"entity_type": "account", **values}, PROVIDERS)
    assert field in result.errors and result.policy is None


def test_cognito_authenticated_and_unauthenticated():
    pool = "us-east-1:0f3c1e4e-5a1b-4a3b-9f7e-1d2c3b4a5e6f"
    for amr in ("authenticated", "unauthenticated"):
        statement = only_statement(
            {
                "entity_type": "web_identity",
                "web_provider": "cognito",
                "audience": pool,
                "cognito_amr": amr,
            }
        )
        assert statement == {
            "Effect": "Allow",
            "Principal": {"Federated": "cognito-identity.amazonaws.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {"cognito-identity.amazonaws.com:aud": pool},
                "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": amr},
            },
        }
    bad = build_trust(
        {"entity_type": "web_identity", "web_provider": "cognito", "audience": "not a pool"},
        PROVIDERS,
    )
    assert "audience" in bad.errors


@pytest.mark.parametrize(
    ("provider", "federated", "key"),
    [
        ("amazon", "www.amazon.com", "www.amazon.com:app_id"),
        ("facebook", "graph.facebook.com", "graph.facebook.com:app_id"),
        ("google", "accounts.google.com", "accounts.google.com:aud"),
    ],
)
def test_social_providers(provider, federated, key):
    statement = only_statement(
        {"entity_type": "web_identity", "web_provider": provider, "audience": "app-123"}
    )
    assert statement == {
        "Effect": "Allow",
        "Principal": {"Federated": federated},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {key: "app-123"}},
    }


def test_account_oidc_provider_with_audience():
    statement = only_statement(
        {"entity_type": "web_identity", "web_provider": OKTA_OIDC, "audience": "client-1"}
    )
    assert statement["Principal"] == {"Federated": OKTA_OIDC}
    assert statement["Condition"] == {
        "StringEquals": {"example.okta.com/oauth2/default:aud": "client-1"}
    }


def test_github_with_branch_uses_string_equals():
    statement = only_statement(
        {
            "entity_type": "web_identity",
            "web_provider": GITHUB,
            "github_org": "Org",
            "github_repo": "Repo",
            "github_branch": "main",
        }
    )
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:Org/Repo:ref:refs/heads/main",
        }
    }


def test_github_without_branch_uses_string_like():
    statement = only_statement(
        {
            "entity_type": "web_identity",
            "web_provider": GITHUB,
            "github_org": "Org",
            "github_repo": "Repo",
        }
    )
    assert statement["Condition"] == {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {"token.actions.githubusercontent.com:sub": "repo:Org/Repo:*"},
    }


def test_github_needs_org_and_repo_and_unknown_provider_is_refused():
    result = build_trust({"entity_type": "web_identity", "web_provider": GITHUB}, PROVIDERS)
    assert {"github_org", "github_repo"} <= set(result.errors)
    other = build_trust(
        {
            "entity_type": "web_identity",
            "web_provider": "arn:aws:iam::1:oidc-provider/evil.example",
            "audience": "x",
        },
        PROVIDERS,
    )
    assert "web_provider" in other.errors


def test_saml_console_access():
    statement = only_statement(
        {"entity_type": "saml", "saml_provider": SAML, "saml_access": "console"}
    )
    assert statement == {
        "Effect": "Allow",
        "Principal": {"Federated": SAML},
        "Action": "sts:AssumeRoleWithSAML",
        "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
    }


def test_saml_programmatic_needs_an_attribute_condition():
    missing = build_trust(
        {"entity_type": "saml", "saml_provider": SAML, "saml_access": "programmatic"}, PROVIDERS
    )
    assert "saml_attribute" in missing.errors
    statement = only_statement(
        {
            "entity_type": "saml",
            "saml_provider": SAML,
            "saml_access": "programmatic",
            "saml_attribute": "SAML:sub_type",
            "saml_value": "persistent",
        }
    )
    assert statement["Condition"] == {"StringEquals": {"SAML:sub_type": "persistent"}}


def test_saml_console_with_attribute_adds_both():
    statement = only_statement(
        {
            "entity_type": "saml",
            "saml_provider": SAML,
            "saml_access": "console",
            "saml_attribute": "SAML:iss",
            "saml_value": "https://idp.example",
        }
    )
    assert statement["Condition"]["StringEquals"] == {
        "SAML:aud": "https://signin.aws.amazon.com/saml",
        "SAML:iss": "https://idp.example",
    }


def test_custom_template_is_the_console_template_and_needs_a_principal():
    template = json.loads(CUSTOM_TEMPLATE)
    assert template["Statement"][0] == {
        "Sid": "Statement1",
        "Effect": "Allow",
        "Principal": {},
        "Action": "sts:AssumeRole",
    }
    result = build_trust({"entity_type": "custom", "custom_policy": CUSTOM_TEMPLATE}, PROVIDERS)
    assert "custom_policy" in result.errors  # an empty Principal is not valid


def test_custom_policy_is_used_as_written():
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::444455556666:role/ci"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
    result = build_trust(
        {"entity_type": "custom", "custom_policy": json.dumps(document)}, PROVIDERS
    )
    assert result.errors == {} and result.policy == document


def test_trust_policy_size_quota():
    result = build_trust(
        {
            "entity_type": "account",
            "account_choice": "this",
            "require_external_id": "1",
            "external_id": "x" * 1000,
        },
        PROVIDERS,
        size_quota=500,
    )
    assert "AssumeRolePolicySizeQuota" in result.errors["entity_type"]


def test_unknown_type():
    assert "entity_type" in build_trust({"entity_type": "robot"}, PROVIDERS).errors


def test_catalogue_has_forty_services_with_exact_principals():
    assert len(catalog.services()) >= 40
    for case in catalog.CATALOGUE:
        assert case.principal == case.principal.lower() and case.principal.endswith(
            ".amazonaws.com"
        )
    wanted = {
        "EC2": "ec2.amazonaws.com",
        "Lambda": "lambda.amazonaws.com",
        "Step Functions": "states.amazonaws.com",
        "Glue": "glue.amazonaws.com",
        "SageMaker": "sagemaker.amazonaws.com",
        "Backup": "backup.amazonaws.com",
    }
    for service, principal in wanted.items():
        assert any(c.service == service and c.principal == principal for c in catalog.CATALOGUE)
    assert [c.principal for c in catalog.search("task ecs")] == ["ecs-tasks.amazonaws.com"]
    assert catalog.suggested_policies("ec2.amazonaws.com")[0].endswith(
        "AmazonSSMManagedInstanceCore"
    )


# Issue 10: fixes on the way, and findings of the built trust policies ---------------------


def test_service_roles_have_no_cross_account_finding():
    """The old review said "Another AWS account (None)" for every service role."""
    result = build_trust({"entity_type": "service", "service": "lambda.amazonaws.com"}, PROVIDERS)
    assert result.findings == []


def test_other_account_without_external_id_or_mfa_is_a_warning_naming_it():
    values = {"entity_type": "account", "account_choice": "other", "account_id": "999988887777"}
    [finding] = build_trust(values, PROVIDERS).findings
    assert finding.level == "warning" and "999988887777" in finding.message
    with_mfa = build_trust({**values, "require_mfa": "1"}, PROVIDERS)
    assert with_mfa.findings == []
    this = build_trust({"entity_type": "account", "account_choice": "this"}, PROVIDERS)
    assert this.findings == []


def test_eks_pod_identity_trust_adds_tag_session():
    result = build_trust({"entity_type": "service", "service": "pods.eks.amazonaws.com"}, PROVIDERS)
    assert result.policy["Statement"][0]["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert not [f for f in result.findings if f.level == "error"]


@pytest.mark.parametrize(
    ("org", "repo", "branch", "sub"),
    [
        (
            "octo-org@1234567",
            "octo-repo@7654321",
            "main",
            "repo:octo-org@1234567/octo-repo@7654321:ref:refs/heads/main",
        ),
        (
            "octo-org",
            "octo-repo",
            "feat/a@b+c#d",
            "repo:octo-org/octo-repo:ref:refs/heads/feat/a@b+c#d",
        ),
    ],
)
def test_github_sub_forms_with_immutable_ids_and_branch_characters(org, repo, branch, sub):
    values = {
        "entity_type": "web_identity",
        "web_provider": GITHUB,
        "github_org": org,
        "github_repo": repo,
        "github_branch": branch,
    }
    result = build_trust(values, PROVIDERS)
    assert result.errors == {}
    condition = result.policy["Statement"][0]["Condition"]["StringEquals"]
    assert condition["token.actions.githubusercontent.com:sub"] == sub
    assert result.findings == []


def test_saml_regional_sign_in_endpoint_beside_the_global_one():
    values = {"entity_type": "saml", "saml_provider": SAML, "saml_access": "console"}
    global_ = build_trust(values, PROVIDERS)
    condition = global_.policy["Statement"][0]["Condition"]["StringEquals"]
    assert condition["SAML:aud"] == "https://signin.aws.amazon.com/saml"
    regional = build_trust({**values, "saml_region": "eu-west-1"}, PROVIDERS)
    condition = regional.policy["Statement"][0]["Condition"]["StringEquals"]
    assert condition["SAML:aud"] == "https://eu-west-1.signin.aws.amazon.com/saml"
    assert regional.findings == []
    bad = build_trust({**values, "saml_region": "mars-1"}, PROVIDERS)
    assert bad.policy is None and "saml_region" in bad.errors
