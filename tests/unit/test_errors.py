"""AWS errors become our types with code, message and request id (botocore Stubber for the
errors moto cannot produce)."""

import boto3
import pytest
from botocore import exceptions as bexc
from botocore.stub import Stubber

from app.aws import errors
from app.aws.clients import AwsClients
from app.aws.iam import IamGateway


@pytest.fixture
def stubbed():
    clients = AwsClients(region="us-east-1", endpoint_url="http://127.0.0.1:9", sandbox=True)
    client = clients.client("iam")
    with Stubber(client) as stub:
        yield IamGateway(clients), stub


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDenied", 403, errors.AccessDenied),
        ("NoSuchEntity", 404, errors.NotFound),
        ("Throttling", 400, errors.Throttled),
        ("LimitExceeded", 409, errors.LimitExceeded),
        ("MalformedPolicyDocument", 400, errors.InvalidInput),
        ("ExpiredToken", 403, errors.CredentialsProblem),
        ("SomethingNew", 500, errors.AwsError),
    ],
)
def test_client_errors_map_to_our_types(stubbed, code, status, expected):
    gateway, stub = stubbed
    stub.add_client_error(
        "get_role",
        service_error_code=code,
        service_message="nope",
        http_status_code=status,
        response_meta={"RequestId": "req-123"},
        expected_params={"RoleName": "r"},
    )
    with pytest.raises(expected) as caught:
        gateway.get_role("r")
    assert caught.type is expected
    assert caught.value.code == code
    assert caught.value.message == "nope"
    assert caught.value.request_id == "req-123"
    assert caught.value.operation == "GetRole"


def test_plain_words_for_access_denied():
    err = errors.AccessDenied("AccessDenied", "User x is not authorized", request_id="r")
    assert "lack a permission" in err.plain


def test_unreachable_endpoint_is_our_error():
    gateway = IamGateway(
        AwsClients(
            region="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            sandbox=True,
            connect_timeout=0.5,
            max_attempts=1,
        )
    )
    with pytest.raises(errors.Unreachable):
        gateway.get_role("r")


def test_boto3_is_imported_only_under_app_aws():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "app"
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "aws" not in p.relative_to(root).parts[:1]
        and any(
            line.startswith(("import boto3", "from boto3", "import botocore", "from botocore"))
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []
    assert boto3  # imported here only to show tests may use it


@pytest.mark.parametrize(
    ("raised", "lost"),
    [
        # The request may have reached AWS: its answer did not come back.
        (lambda: bexc.ReadTimeoutError(endpoint_url="https://iam"), True),
        (lambda: bexc.ConnectionClosedError(endpoint_url="https://iam"), True),
        # The connection was never made: the request did not reach AWS.
        (lambda: bexc.EndpointConnectionError(endpoint_url="https://iam"), False),
        (lambda: bexc.ConnectTimeoutError(endpoint_url="https://iam"), False),
    ],
)
def test_an_answer_lost_after_sending_is_told_from_a_request_never_sent(raised, lost):
    found = errors.from_botocore_error(raised())
    assert isinstance(found, errors.Unreachable)  # callers that handle Unreachable still do
    assert isinstance(found, errors.AnswerLost) is lost
    assert errors.answer_lost(found) is lost
    if lost:
        assert "checks in AWS whether the change happened" in found.plain


def test_an_unreadable_answer_is_a_lost_answer_in_its_own_words():
    from botocore.parsers import ResponseParserError

    from app.aws.translate import aws_errors

    with pytest.raises(errors.AnswerLost) as raised, aws_errors():
        raise ResponseParserError("Unable to parse response (not well-formed)")
    assert raised.value.code == "ResponseParserError"
    assert "could not read" in raised.value.plain


def test_botocores_retries_are_kept_and_make_already_exists_a_lost_answer():
    def client_error(code, retries):
        return bexc.ClientError(
            {
                "Error": {"Code": code, "Message": "m"},
                "ResponseMetadata": {"HTTPStatusCode": 409, "RetryAttempts": retries},
            },
            "CreateRole",
        )

    retried = errors.from_client_error(client_error("EntityAlreadyExists", 2))
    assert isinstance(retried, errors.AlreadyExists) and retried.retried == 2
    assert errors.answer_lost(retried)
    assert not errors.answer_lost(errors.from_client_error(client_error("EntityAlreadyExists", 0)))
    assert not errors.answer_lost(errors.from_client_error(client_error("LimitExceeded", 2)))
