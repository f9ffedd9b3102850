"""AWS errors become our types with code, message and request id (botocore Stubber for the
errors moto cannot produce)."""

import boto3
import pytest
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
