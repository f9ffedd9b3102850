"""Issue 12, finding 8: pages that decide what can be done never refuse on stale memory.
The EC2 role picker offers a role the wizard has just created (with its instance profile) at
once, and attaching it is accepted; a role and profile made outside RoleDesk after the list
was loaded are checked with AWS before being refused; the wizard's name check asks AWS before
it calls a name taken."""

from __future__ import annotations

import json

import boto3
import pytest
from bs4 import BeautifulSoup

from app import migrate
from tests.conftest import SANDBOX_REGION, csrf_token_for

EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    migrate.upgrade(sqlite_url)
    return sqlite_url


@pytest.fixture
def iam(sandbox):
    """A plain boto3 IAM client on the sandbox: changes made outside RoleDesk."""
    return boto3.client(
        "iam",
        endpoint_url=sandbox.endpoint_url,
        region_name=SANDBOX_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _post(client, url, data):
    return client.post(
        url, data={"csrf_token": csrf_token_for(client), **data}, follow_redirects=False
    )


def _choices(client) -> set[str]:
    page = BeautifulSoup(client.get("/instances").text, "html.parser")
    return {o["value"] for o in page.select('select[name="choice"] option') if o.get("value")}


def _attach(client, instance_id: str, choice: str):
    return _post(
        client,
        "/instances/apply",
        {"action": "attach", "instance_id": instance_id, "choice": choice},
    )


def _wizard_ec2_role(client, name: str) -> None:
    from tests.web.test_wizard_flow import finish_create, start

    draft = start(client, {"entity_type": "service", "service": "ec2.amazonaws.com"})
    trust = {"entity_type": "service", "service": "ec2.amazonaws.com", "nav": "next"}
    _post(client, f"/create-role/{draft}/trust", trust)
    _post(client, f"/create-role/{draft}/permissions", {"nav": "next"})
    details = {"name": name, "path": "/", "description": "", "max_session_hours": "1"}
    created = _post(client, f"/create-role/{draft}/create", details)
    assert created.headers["location"].endswith("/done"), created.text[:300]
    finish_create(client, created.headers["location"])


def test_a_role_the_wizard_just_created_is_offered_and_attachable(client, ids, web_app):
    assert "profile:fresh-ec2" not in _choices(client)  # the picker's memory is loaded
    _wizard_ec2_role(client, "fresh-ec2")
    assert "profile:fresh-ec2" in _choices(client)
    response = _attach(client, ids["bastion"], "profile:fresh-ec2")
    assert response.status_code == 303, response.text[:500]
    web_app.state.instances.runner.wait(response.headers["location"].rsplit("/", 1)[-1])


def test_a_profile_made_elsewhere_is_checked_with_aws_before_refusing(client, ids, iam):
    _choices(client)  # memory loaded before the role exists
    iam.create_role(RoleName="made-elsewhere", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    iam.create_instance_profile(InstanceProfileName="made-elsewhere")
    iam.add_role_to_instance_profile(
        InstanceProfileName="made-elsewhere", RoleName="made-elsewhere"
    )
    iam.create_role(RoleName="bare-elsewhere", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    for choice in ("profile:made-elsewhere", "role:bare-elsewhere"):
        review = _post(
            client,
            "/instances/review",
            {"action": "attach", "instance_id": ids["bastion"], "choice": choice},
        )
        assert review.status_code == 200, (choice, review.text[:500])
    refused = _post(
        client,
        "/instances/review",
        {"action": "attach", "instance_id": ids["bastion"], "choice": "profile:nowhere"},
    )
    assert refused.status_code == 422 and "cannot be attached" in refused.text


def test_the_wizard_name_check_asks_aws_before_calling_a_name_taken(client, seeded, iam):
    client.get("/roles")  # the roles list in memory knows web-app-ec2
    iam.create_role(RoleName="Gone-Soon", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    seeded.inventory.refresh()
    iam.delete_role(RoleName="Gone-Soon")  # memory still has it
    from tests.web.test_wizard_flow import finish_create, start

    draft = start(client)
    _post(
        client,
        f"/create-role/{draft}/trust",
        {"entity_type": "service", "service": "lambda.amazonaws.com", "nav": "next"},
    )
    _post(client, f"/create-role/{draft}/permissions", {"nav": "next"})
    details = {"name": "gone-soon", "path": "/", "description": "", "max_session_hours": "1"}
    created = _post(client, f"/create-role/{draft}/create", details)
    assert created.status_code == 303, created.text[:500]
    finish_create(client, created.headers["location"])
