"""Issue 12, finding 6 (who may detach): docs/security.md said destructive actions are for
admins while operators could detach roles from instances. Decided: detaching is an operator's
change, like attaching and replacing (replacing already takes the old role away, and a
detach is undone by attaching again, both on the same audited page); admin-only are user
management and deleting what cannot be put back. This pins the code and the docs together."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import migrate
from tests.conftest import csrf_token_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    migrate.upgrade(sqlite_url)
    return sqlite_url


def _detach(client, instance_id: str):
    data = {
        "action": "detach",
        "instance_id": instance_id,
        "confirm": "Detach",
        "csrf_token": csrf_token_for(client),
    }
    return client.post("/instances/apply", data=data, follow_redirects=False)


def _profile(ec2_client, instance_id: str) -> list[str]:
    found = ec2_client.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    return [
        a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1]
        for a in found
        if a["State"] == "associated"
    ]


def test_an_operator_may_detach_and_a_viewer_may_not(client_as, ids, ec2_client, web_app):
    viewer = _detach(client_as("viewer"), ids["web-2"])
    assert viewer.status_code == 403
    assert _profile(ec2_client, ids["web-2"]) == ["web-app-ec2"]
    operator = _detach(client_as("operator"), ids["web-2"])
    assert operator.status_code == 303, operator.text[:300]
    web_app.state.instances.runner.wait(operator.headers["location"].rsplit("/", 1)[-1])
    assert _profile(ec2_client, ids["web-2"]) == []


def test_the_docs_say_the_same():
    text = (ROOT / "docs" / "security.md").read_text()
    operator_row = next(line for line in text.splitlines() if line.startswith("| `operator`"))
    admin_row = next(line for line in text.splitlines() if line.startswith("| `admin`"))
    assert "detach" in operator_row
    assert "detach" not in admin_row and "destructive actions" not in admin_row
