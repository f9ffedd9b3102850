"""Policy grammar (app.policy) with line and column: JSON errors, trust-only and identity-only
rules. Only errors (what IAM refuses) are listed by `problems`; other levels are asserted apart."""

from __future__ import annotations

import json

import pytest

from app.policy import PolicyKind, analyse, size_of

TRUST = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"Service": "ec2.amazonaws.com"},
      "Action": "sts:AssumeRole"
    }
  ]
}"""


def problems(text, kind):
    found = analyse(text, PolicyKind(kind), risk_timeout=0).errors
    return [(p.message, p.line, p.column) for p in found]


def test_valid_trust_policy_has_no_findings():
    analysis = analyse(TRUST, PolicyKind.TRUST)
    assert (
        analysis.findings == [] and analysis.document["Statement"][0]["Action"] == "sts:AssumeRole"
    )


def test_json_syntax_error_has_line_and_column():
    broken = TRUST.replace('"Effect": "Allow",', '"Effect": "Allow"')
    [(message, line, column)] = problems(broken, "trust")
    assert message.startswith("Not valid JSON") and (line, column) == (6, 7)


def test_resource_in_trust_policy_points_at_the_key():
    text = TRUST.replace(
        '"Action": "sts:AssumeRole"', '"Action": "sts:AssumeRole",\n      "Resource": "*"'
    )
    [(message, line, column)] = problems(text, "trust")
    assert "prohibited field Resource" in message and (line, column) == (8, 7)


def test_non_sts_action_in_trust_policy():
    text = TRUST.replace('"sts:AssumeRole"', '["sts:AssumeRole", "s3:GetObject"]')
    [(message, line, column)] = problems(text, "trust")
    assert "may only allow STS actions" in message and line == 7 and column == 36


def test_trust_policy_needs_principal():
    text = TRUST.replace('"Principal": {"Service": "ec2.amazonaws.com"},', "")
    assert "needs a Principal" in problems(text, "trust")[0][0]


def test_principal_in_identity_policy():
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}],
        },
        indent=2,
    )
    [(message, line, column)] = problems(text, "identity")
    assert "prohibited field Principal" in message and (line, column) == (6, 7)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"Version": "2012-10-17", "Statement": []}, "must not be empty"),
        (
            {
                "Version": "2020-01-01",
                "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            },
            "Version must be",
        ),
        ({"Version": "2012-10-17"}, "Add a Statement"),
        (
            {
                "Version": "2012-10-17",
                "Extra": 1,
                "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            },
            "Unknown top-level element Extra",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": {"Effect": "allow", "Action": "s3:*", "Resource": "*"},
            },
            "Effect must be",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": {"Effect": "Allow", "Action": "GetObject", "Resource": "*"},
            },
            "not an action",
        ),
        (
            {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*"}},
            "Resource or NotResource",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "bucket"},
            },
            "or an ARN",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "A", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                    {"Sid": "A", "Effect": "Deny", "Action": "s3:*", "Resource": "*"},
                ],
            },
            "used twice",
        ),
        (
            {
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "Resource": "*",
                    "Condition": {"StringEqualz": {"a:b": "c"}},
                },
            },
            "Unknown condition",
        ),
    ],
)
def test_identity_grammar_errors(document, expected):
    found = problems(json.dumps(document), "identity")
    assert found and expected in found[0][0], found


def test_condition_operators_with_prefix_and_if_exists_are_accepted():
    document = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {
                "ForAnyValue:StringLikeIfExists": {"aws:TagKeys": "x*"},
                "NumericLessThanEquals": {"s3:max-keys": "10"},
                "Null": {"aws:a": "true"},
            },
        },
    }
    assert problems(json.dumps(document), "identity") == []


def test_characters_outside_the_policy_charset_are_pointed_at():
    text = '{\n  "Version": "2012-10-17",\n  "Statement": "\u2603"\n}'
    [(message, line, column)] = problems(text, "identity")
    assert "U+2603" in message and (line, column) == (3, 17)


def test_empty_and_huge_documents():
    assert problems("   ", "trust")[0][0] == "Enter the policy JSON."
    big = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::b{i:07d}/*"}
            for i in range(3000)
        ],
    }
    found = analyse(json.dumps(big), PolicyKind.IDENTITY, size_quota=10_240, risk_timeout=0)
    assert "this account allows 10240" in found.errors[0].message


def test_size_ignores_whitespace_and_counts_non_ascii_once():
    document = json.loads(TRUST)
    assert size_of(document) == len(json.dumps(document, separators=(",", ":")))
    assert size_of(document) < len(TRUST)
    accented = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "",
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "équipe"}},
            }
        ],
    }
    assert size_of(accented) == len(json.dumps(accented, separators=(",", ":"))) - 5


def test_missing_version_is_a_warning_not_an_error():
    text = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ]
        }
    )
    analysis = analyse(text, PolicyKind.TRUST)
    assert not analysis.blocks
    assert [f.code for f in analysis.findings] == ["MISSING_VERSION"]


def test_repeated_empty_sids_are_accepted():
    statement = {
        "Sid": "",
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    text = json.dumps({"Version": "2012-10-17", "Statement": [statement, dict(statement)]})
    assert analyse(text, PolicyKind.TRUST).findings == []
