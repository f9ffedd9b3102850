"""IAM Access Analyzer's ValidatePolicy (real AWS only; moto lacks it, so botocore's Stubber
plays AWS): the request RoleDesk sends, paging, how findings map and merge with RoleDesk's,
and what happens when AWS cannot be asked."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from app.aws.access_analyzer import TRUST_RESOURCE_TYPE, AccessAnalyzerGateway
from app.policy import Finding, PolicyKind, analyse
from app.policy.access_analyzer import AccessAnalyzerChecks, merge, to_finding

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    },
    indent=4,
)


class Clients:
    """Hands the gateway one stubbed client, as AwsClients.client would."""

    def __init__(self, client):
        self._client = client

    def client(self, service, region=None):
        assert service == "accessanalyzer"
        return self._client


@pytest.fixture
def stubbed():
    client = boto3.client(
        "accessanalyzer",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with Stubber(client) as stub:
        yield client, stub
    stub.assert_no_pending_responses()


def raw_finding(kind, code, line, column, index=0):
    return {
        "findingDetails": f"{code} details",
        "findingType": kind,
        "issueCode": code,
        "learnMoreLink": "https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-reference-policy-checks.html",
        "locations": [
            {
                "path": [{"value": "Statement"}, {"index": index}, {"value": "Principal"}],
                "span": {
                    "start": {"line": line, "column": column, "offset": 1},
                    "end": {"line": line, "column": column + 5, "offset": 6},
                },
            }
        ],
    }


def test_trust_policy_is_validated_as_assume_role_document_with_paging(stubbed):
    client, stub = stubbed
    first = raw_finding("SECURITY_WARNING", "EXTERNAL_PRINCIPAL", 6, 16)
    second = raw_finding("SUGGESTION", "EMPTY_OBJECT_PRINCIPAL", 7, 4)
    stub.add_response(
        "validate_policy",
        {"findings": [first], "nextToken": "page2"},
        {
            "policyDocument": TRUST,
            "policyType": "RESOURCE_POLICY",
            "validatePolicyResourceType": TRUST_RESOURCE_TYPE,
        },
    )
    stub.add_response(
        "validate_policy",
        {"findings": [second]},
        {
            "policyDocument": TRUST,
            "policyType": "RESOURCE_POLICY",
            "validatePolicyResourceType": TRUST_RESOURCE_TYPE,
            "nextToken": "page2",
        },
    )
    checks = AccessAnalyzerChecks(AccessAnalyzerGateway(Clients(client)))
    found = checks.findings(TRUST, PolicyKind.TRUST)
    assert [(f.level, f.code, f.statement, f.line, f.column) for f in found] == [
        ("security_warning", "EXTERNAL_PRINCIPAL", 0, 6, 17),
        ("suggestion", "EMPTY_OBJECT_PRINCIPAL", 0, 7, 5),
    ]
    assert all(f.source == "IAM Access Analyzer" for f in found)
    # Cached by content: asking again makes no second call (the Stubber has no more answers).
    assert checks.findings(TRUST, PolicyKind.TRUST) == found


def test_identity_policy_is_validated_as_identity_policy(stubbed):
    client, stub = stubbed
    text = '{"Version": "2012-10-17", "Statement": []}'
    stub.add_response(
        "validate_policy",
        {"findings": []},
        {"policyDocument": text, "policyType": "IDENTITY_POLICY"},
    )
    assert AccessAnalyzerGateway(Clients(client)).validate_policy(text, trust=False) == []


def test_access_denied_leaves_local_checks_alone_with_a_suggestion(stubbed):
    client, stub = stubbed
    stub.add_client_error(
        "validate_policy", "AccessDeniedException", "not authorized", http_status_code=403
    )
    checks = AccessAnalyzerChecks(AccessAnalyzerGateway(Clients(client)))
    [finding] = checks.findings(TRUST, PolicyKind.TRUST)
    assert finding.level == "suggestion" and finding.code == "ACCESS_ANALYZER_UNAVAILABLE"
    assert "AccessDenied" in finding.message and "access-analyzer:ValidatePolicy" in finding.message


def test_merge_drops_aws_findings_that_repeat_ours():
    text = TRUST.replace('"arn:aws:iam::111122223333:root"', '"*"')
    local = analyse(text, PolicyKind.TRUST, account_id="999999999999").findings
    [ours] = [f for f in local if f.code == "TRUST_ANY_PRINCIPAL"]
    same_place = to_finding(raw_finding("SECURITY_WARNING", "EXTERNAL_PRINCIPAL", ours.line, 0))
    elsewhere = to_finding(raw_finding("ERROR", "INVALID_ACTION", 7, 10))
    merged = merge(local, [same_place, elsewhere])
    assert [f.code for f in merged] == [f.code for f in local] + ["INVALID_ACTION"]
    assert isinstance(merged[-1], Finding) and merged[-1].level == "error"


def test_an_access_analyzer_error_blocks_the_review_gate():
    from app.wizard.review import policy_review
    from app.wizard.steps import Quotas, check_draft
    from app.wizard.trust import Providers

    data = {"trust": {"entity_type": "service", "service": "lambda.amazonaws.com"}}
    check = check_draft(data, Providers("111122223333"), lambda arn: None, Quotas())
    asked = []

    def remote(text, kind):
        asked.append((kind, json.loads(text)))
        aws = Finding("error", "INVALID_SERVICE", "x", 0, 3, 5, "IAM Access Analyzer")
        return [aws] if kind is PolicyKind.TRUST else []

    assert not policy_review(check, lambda p: None, data=data).blocks
    review = policy_review(check, lambda p: None, data=data, remote=remote)
    assert review.blocks and asked == [(PolicyKind.TRUST, check.trust.policy)]
    assert review.findings[0].subject == "Trust policy"
