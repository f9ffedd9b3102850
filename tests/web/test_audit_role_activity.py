"""The role detail page's Activity section: RoleDesk's events for the role, and CloudTrail's
on real AWS (stubbed here: moto does not implement LookupEvents), or a plain statement that
the sandbox has no CloudTrail."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.stub import ANY, Stubber
from bs4 import BeautifulSoup

from app.audit import activity as activity_module
from app.aws.cloudtrail import CloudTrailGateway
from app.main import create_app
from app.services import build_services
from app.settings import Settings
from tests.conftest import signed_in


def soup(response):
    return BeautifulSoup(response.text, "html.parser")


def test_sandbox_role_shows_its_roledesk_events_and_no_cloudtrail(client, seeded):
    page = soup(client.get("/roles/web-app-ec2"))
    section = page.select_one("#activity")
    actions = [c.text for c in section.select("table.audit-events td:nth-of-type(4)")]
    assert "iam:CreateRole" in actions and "iam:AttachRolePolicy" in actions
    targets = {c.text for c in section.select("table.audit-events td.target")}
    assert targets == {f"arn:aws:iam::{seeded.identity.account}:role/web-app-ec2"}
    assert "CloudTrail is not available in the sandbox" in section.text
    link = section.find("a", string=lambda s: s and "All of this role" in s)["href"]
    assert [
        r.select_one("td:nth-of-type(4)").text
        for r in soup(client.get(link)).select("table.audit-events tbody tr")
    ][-1] == "iam:CreateRole"


@pytest.fixture
def aws_services(db_url, sandbox, monkeypatch):
    """Real-AWS mode (pointed at moto for everything but CloudTrail, which is stubbed).
    Real-AWS mode takes credentials from the standard chain, here the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    services = build_services(
        Settings(database_url=db_url, mode="aws"), sandbox_endpoint=sandbox.endpoint_url
    )
    from app.sandbox_seed import seed

    seed(services)
    activity_module._trail_cache.clear()
    yield services
    services.db.dispose()


def trail_event(name):
    detail = {
        "sourceIPAddress": "198.51.100.7",
        "errorCode": None,
        "requestID": "r-1",
        "userIdentity": {"arn": "arn:aws:iam::123456789012:user/ops"},
    }
    return {
        "EventId": f"id-{name}",
        "EventName": name,
        "ReadOnly": "false",
        "EventTime": datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        "EventSource": "iam.amazonaws.com",
        "Username": "ops",
        "Resources": [{"ResourceType": "AWS::IAM::Role", "ResourceName": "web-app-ec2"}],
        "CloudTrailEvent": json.dumps(detail),
    }


def test_real_aws_shows_cloudtrail_events_marked_as_such(aws_services):
    trail_client = aws_services.clients.client("cloudtrail", "us-east-1")
    with Stubber(trail_client) as stub:
        stub.add_response(
            "lookup_events",
            {"Events": [trail_event("AttachRolePolicy"), trail_event("CreateRole")]},
            {
                "LookupAttributes": [
                    {"AttributeKey": "ResourceName", "AttributeValue": "web-app-ec2"}
                ],
                "StartTime": ANY,
                "EndTime": ANY,
                "MaxResults": 50,
            },
        )
        with signed_in(create_app(aws_services)) as client:
            page = soup(client.get("/roles/web-app-ec2"))
            again = soup(client.get("/roles/web-app-ec2"))  # cached: no second call
        stub.assert_no_pending_responses()
    rows = page.select("#activity table.trail-events tbody tr")
    assert [r.select_one("code").text for r in rows] == ["AttachRolePolicy", "CreateRole"]
    assert all("from CloudTrail" in r.text for r in rows)
    assert "198.51.100.7" in rows[0].text and "ops" in rows[0].text
    assert len(again.select("#activity table.trail-events tbody tr")) == 2
    assert "not available in the sandbox" not in page.text


def test_cloudtrail_errors_are_explained_not_a_500(aws_services):
    trail_client = aws_services.clients.client("cloudtrail", "us-east-1")
    with Stubber(trail_client) as stub:
        stub.add_client_error(
            "lookup_events",
            "AccessDeniedException",
            "User is not authorized to perform: cloudtrail:LookupEvents",
            http_status_code=400,
        )
        with signed_in(create_app(aws_services)) as client:
            response = client.get("/roles/web-app-ec2")
    assert response.status_code == 200
    section = soup(response).select_one("#activity")
    assert "AccessDeniedException" in section.text and "cloudtrail:LookupEvents" in section.text
    assert section.select("table.audit-events tbody tr")  # RoleDesk's own record still shown


def test_gateway_is_declared_for_the_permissions_policy():
    from app.aws.calls import REGISTRY

    assert REGISTRY["CloudTrailGateway.role_events"].action == "cloudtrail:LookupEvents"
    assert not REGISTRY["CloudTrailGateway.role_events"].mutating
    assert CloudTrailGateway.role_events.__doc__
