"""The vendored AWS managed policy descriptions: looked up by ARN in any partition, nothing
for customer managed or unknown policies, and the generator's parsing of iam-floyd."""

from __future__ import annotations

import pytest

from app.policy import managed_descriptions
from app.policy.vendor_descriptions import parse

LAMBDA_BASIC = "Provides write permissions to CloudWatch Logs."


def test_describe_known_unknown_and_customer_managed():
    arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    assert managed_descriptions.describe(arn) == LAMBDA_BASIC
    assert managed_descriptions.describe(arn.replace("arn:aws:", "arn:aws-cn:")) == LAMBDA_BASIC
    assert managed_descriptions.describe("arn:aws:iam::aws:policy/NoSuchPolicy") == ""
    # A customer managed policy of the same name is not AWS's policy.
    assert (
        managed_descriptions.describe("arn:aws:iam::123456789012:policy/AdministratorAccess") == ""
    )
    assert managed_descriptions.describe("not an arn") == ""


def test_source_names_package_version_licence_and_dates():
    source = managed_descriptions.source()
    assert source.package == "iam-floyd" and source.licence == "Apache-2.0"
    assert source.count > 1000
    assert len(source.published) == 10 and len(source.generated) == 10


SAMPLE = """/** Provides names of all AWS managed policies. */
class AwsManagedPolicy {
}
/** Provides full access to AWS services and resources. */
AwsManagedPolicy.AdministratorAccess = 'AdministratorAccess';
/** Default policy for AWS Lambda service role. */
AwsManagedPolicy.AWSLambdaRole = 'service-role/AWSLambdaRole';
"""


def test_parse_reads_comment_and_path_pairs():
    assert parse(SAMPLE) == {
        "AdministratorAccess": "Provides full access to AWS services and resources.",
        "service-role/AWSLambdaRole": "Default policy for AWS Lambda service role.",
    }


def test_parse_refuses_a_changed_layout():
    with pytest.raises(ValueError):
        parse("export const AwsManagedPolicy = {};")
