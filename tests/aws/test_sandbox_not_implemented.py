"""The embedded sandbox answers an action moto does not implement as AWS answers an error
(code NotImplemented, HTTP 501, not retried), for query (XML) and JSON protocol services alike,
so RoleDesk can tell "the sandbox cannot do this" from a fault."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from app.aws.sandbox import Sandbox
from tests.conftest import SANDBOX_REGION


def _client(service: str, sandbox: Sandbox) -> Any:
    return boto3.client(
        service,
        endpoint_url=sandbox.endpoint_url,
        region_name=SANDBOX_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.mark.parametrize(
    ("service", "call", "kwargs", "action"),
    [
        (  # IAM: the query protocol, XML errors
            "iam",
            "generate_service_last_accessed_details",
            {"Arn": "arn:aws:iam::123456789012:role/anything"},
            "generate_service_last_accessed_details",
        ),
        ("cloudtrail", "lookup_events", {}, "lookup_events"),  # JSON 1.1
    ],
)
def test_unimplemented_action_is_an_aws_error_not_a_retried_500(
    moto_server: Sandbox, service: str, call: str, kwargs: dict[str, Any], action: str
) -> None:
    with pytest.raises(ClientError) as raised:
        getattr(_client(service, moto_server), call)(**kwargs)
    answer = raised.value.response
    assert answer["Error"]["Code"] == "NotImplemented"
    assert answer["Error"]["Message"] == f"The {action} action has not been implemented"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert answer["ResponseMetadata"]["RetryAttempts"] == 0


def test_implemented_actions_answer_as_before(moto_server: Sandbox) -> None:
    iam = _client("iam", moto_server)
    with pytest.raises(ClientError) as raised:
        iam.get_role(RoleName="no-such-role-anywhere")
    assert raised.value.response["Error"]["Code"] == "NoSuchEntity"
