"""The EC2 role picker of one process offers, and accepts, a role created a moment earlier
through another process (the roles list and the instance profiles are shared; the earlier
60-second refusal is gone). Two apps, each with its own Services (engine, shared state,
lists) on one database and one sandbox, as two workers have."""

from __future__ import annotations

import boto3
from bs4 import BeautifulSoup

from app.audit.audited import AuditContext
from app.main import create_app
from app.services import build_services
from app.wizard.create import RoleCreator
from tests.conftest import csrf_token_for, signed_in
from tests.shared.test_name_claims import plan


def test_a_role_made_through_one_process_is_offered_and_accepted_by_another(
    seeded, settings, sandbox
):
    second = build_services(settings, sandbox_endpoint=sandbox.endpoint_url)
    try:
        with signed_in(create_app(second)) as other:
            assert other.get("/instances").status_code == 200  # holds its lists now
            assert RoleCreator(seeded).run(plan("Picker-Ec2"), AuditContext(actor="t")).ok

            page = BeautifulSoup(other.get("/instances").text, "html.parser")
            offered = [o.get("value") for o in page.select("select[name=choice] option")]
            assert "profile:Picker-Ec2" in offered

            ec2 = boto3.client(
                "ec2",
                endpoint_url=sandbox.endpoint_url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            instance_id = ec2.describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
            response = other.post(
                "/instances/review",
                data={
                    "csrf_token": csrf_token_for(other),
                    "action": "attach",
                    "choice": "profile:Picker-Ec2",
                    "instance_id": instance_id,
                },
            )
            assert response.status_code == 200, response.text[:500]
            assert "cannot be attached" not in response.text
    finally:
        second.db.dispose()
