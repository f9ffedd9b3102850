"""The create-role wizard through the ASGI app: every step with and without htmx, plain-form
journeys per trusted-entity type, 422s with errors beside the field and no AWS call."""

from __future__ import annotations

import json

from bs4 import BeautifulSoup
from sqlalchemy import func, select

from app.models import AuditEvent
from app.wizard.catalog import SSM_CORE
from tests.conftest import csrf_token_for

S3_READ = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"


def soup(response):
    return BeautifulSoup(response.text, "html.parser")


def audit_count(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def start(client) -> str:
    token = csrf_token_for(client)
    response = client.post("/create-role", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/create-role/") and location.endswith("/trust")
    return location.split("/")[2]


def post(client, url, data, **kwargs):
    return client.post(url, data={"csrf_token": csrf_token_for(client), **data}, **kwargs)


def fill_trust(client, draft, values, nav="next"):
    return post(
        client, f"/create-role/{draft}/trust", {**values, "nav": nav}, follow_redirects=False
    )


def add_policy(client, draft, arn):
    return post(client, f"/create-role/{draft}/permissions", {"add": arn}, follow_redirects=False)


def details(name, **extra):
    return {"name": name, "path": "/", "description": "", "max_session_hours": "1", **extra}


def create(client, draft, values):
    return post(client, f"/create-role/{draft}/create", values, follow_redirects=False)


def test_full_journey_ec2_role_with_profile_suggestion_and_cli(client, seeded):
    draft = start(client)
    assert (
        fill_trust(
            client, draft, {"entity_type": "service", "service": "ec2.amazonaws.com"}
        ).headers["location"]
        == f"/create-role/{draft}/permissions"
    )
    page = soup(client.get(f"/create-role/{draft}/permissions"))
    assert page.select_one(".suggestions button")["value"] == SSM_CORE
    add_policy(client, draft, SSM_CORE)
    add_policy(client, draft, S3_READ)
    response = post(
        client, f"/create-role/{draft}/permissions", {"nav": "next"}, follow_redirects=False
    )
    assert response.headers["location"] == f"/create-role/{draft}/review"
    review = soup(client.get(f"/create-role/{draft}/review"))
    assert json.loads(review.select_one("#review-trust-json").text)["Statement"][0][
        "Principal"
    ] == {"Service": "ec2.amazonaws.com"}
    response = create(client, draft, details("wizard-ec2", tag_key="team", tag_value="web"))
    assert response.status_code == 303
    assert response.headers["location"] == f"/create-role/{draft}/done"
    done = soup(client.get(response.headers["location"]))
    arn = "arn:aws:iam::123456789012:role/wizard-ec2"
    assert done.select_one("#role-arn").text == arn
    assert done.find("a", href="/instances") is not None
    assert done.find("a", href="/roles/wizard-ec2") is not None
    cli = done.select_one("#cli-commands").text
    assert "aws iam create-role --role-name wizard-ec2" in cli
    assert "aws iam create-instance-profile --instance-profile-name wizard-ec2" in cli
    iam = seeded.iam
    assert {p.arn for p in iam.list_attached_role_policies("wizard-ec2")} == {SSM_CORE, S3_READ}
    assert [p.name for p in iam.list_instance_profiles_for_role("wizard-ec2")] == ["wizard-ec2"]
    assert iam.get_role("wizard-ec2").tags[0].key == "team"
