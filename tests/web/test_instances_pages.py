"""The EC2 instances pages through the ASGI app: with and without htmx, forms without JS."""

from __future__ import annotations

import threading

from bs4 import BeautifulSoup

from app.audit.audited import AuditContext
from app.instances.operations import FINISH_ACTION, _record, record_start
from app.instances.service import ATTACH, InstancePlan, Plan
from tests.conftest import csrf_token_for

REGION = "us-east-1"


def soup(response):
    return BeautifulSoup(response.text, "html.parser")


def names_listed(page):
    return [label.text for label in page.select("#instance-rows label")]


def live_profile(ec2_client, instance_id):
    found = ec2_client.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}]
    )["IamInstanceProfileAssociations"]
    return [a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] for a in found]


def test_full_page_lists_instances_with_their_roles(client):
    response = client.get("/instances")
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    page = soup(response)
    assert page.select_one('a[aria-current="page"]').text == "EC2 instances"
    assert names_listed(page) == [
        "bastion",
        "batch-worker-1",
        "build-agent-old",
        "reporting",
        "web-1",
        "web-2",
    ]
    web1 = page.find("label", string="web-1").find_parent("tr")
    assert "web-app-ec2" in web1.select_one(".role-cell").text
    assert "running" in web1.text and "t3.small" in web1.text and "us-east-1a" in web1.text
    bastion = page.find("label", string="bastion").find_parent("tr")
    assert "No role" in bastion.text
    choices = [o["value"] for o in page.select("#role-choice option")]
    # profiles by their role, and the EC2-trusting role that has no profile yet
    assert "profile:web-app-ec2" in choices and "role:legacy-build-server" in choices
    assert "role:orders-lambda" not in choices  # trusts Lambda, not EC2
    for control in page.select("select, input:not([type=hidden])"):
        assert page.select_one(f'label[for="{control["id"]}"]'), control


def test_htmx_filtering_returns_the_results_fragment(client):
    response = client.get("/instances?role=web-app-ec2", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    assert "<html" not in response.text
    assert names_listed(soup(response)) == ["web-1", "web-2"]


def test_filters_without_javascript(client):
    assert names_listed(soup(client.get("/instances?state=stopped"))) == [
        "build-agent-old",
        "reporting",
    ]
    assert names_listed(soup(client.get("/instances?role=(none)"))) == [
        "bastion",
        "build-agent-old",
    ]
    assert names_listed(soup(client.get("/instances?name=WEB"))) == ["web-1", "web-2"]


def test_select_all_checks_every_choosable_instance(client, ids, ec2_client):
    ec2_client.terminate_instances(InstanceIds=[ids["bastion"]])
    page = soup(client.get("/instances?select=all", headers={"HX-Request": "true"}))
    checked = {box["value"] for box in page.select("input[name=instance_id][checked]")}
    assert checked == set(ids.values()) - {ids["bastion"]}
    terminated = page.select_one(f"#pick-{ids['bastion']}")
    assert terminated.has_attr("disabled")


def test_bad_query_values_give_a_page_not_a_500(client):
    for url in (
        "/instances?page=abc",
        "/instances?state=evil",
        "/instances?role=<script>",
        "/instances?name=" + "x" * 500,
        "/instances?region=mars-1",
    ):
        response = client.get(url)
        assert response.status_code in (200, 422), url
        assert "Traceback" not in response.text
    page = soup(client.get("/instances?region=mars-1"))
    assert "Unknown region" in page.select_one("#region-error").text


def test_names_from_aws_are_escaped(client, seeded, ec2_client, ids):
    ec2_client.create_tags(
        Resources=[ids["bastion"]], Tags=[{"Key": "Name", "Value": "<script>alert(1)</script>"}]
    )
    response = client.get("/instances")
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def post(client, url, data, **kwargs):
    return client.post(url, data={"csrf_token": csrf_token_for(client), **data}, **kwargs)


def test_review_without_selection_or_role_is_a_422_with_errors_beside_the_fields(client):
    response = post(client, "/instances/review", {"action": "attach", "region": REGION})
    assert response.status_code == 422
    page = soup(response)
    assert page.select_one("#instance-error").text == "Select at least one instance."
    assert page.select_one("#choice-error").text == "Choose the role to attach."


def test_role_that_cannot_go_on_ec2_is_refused_before_any_aws_call(client, ids):
    response = post(
        client,
        "/instances/review",
        {"action": "attach", "choice": "role:orders-lambda", "instance_id": ids["bastion"]},
    )
    assert response.status_code == 422
    assert "does not trust ec2.amazonaws.com" in soup(response).select_one("#choice-error").text


def test_more_than_fifty_instances_are_refused(client):
    many = [f"i-{n:017x}" for n in range(51)]
    response = post(
        client,
        "/instances/review",
        {"action": "detach", "instance_id": many},
    )
    assert response.status_code == 422
    assert "at most 50" in soup(response).select_one("#instance-error").text


def test_review_shows_the_role_being_replaced(client, ids):
    response = post(
        client,
        "/instances/review",
        {"action": "attach", "choice": "profile:batch-worker-ec2", "instance_id": ids["web-1"]},
    )
    assert response.status_code == 200
    page = soup(response)
    assert "web-1 now carries web-app-ec2" in " ".join(page.select_one(".warning").text.split())
    row = page.select_one(f"#plan-{ids['web-1']}")
    assert "Replace web-app-ec2 with batch-worker-ec2" in " ".join(row.text.split())
    assert page.find("button", string="Replace role on 1 instance")


def test_attach_without_javascript_runs_and_reports(client, ids, ec2_client):
    response = post(
        client,
        "/instances/apply",
        {"action": "attach", "choice": "profile:reporting-ec2", "instance_id": ids["bastion"]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/instances/operations/")
    client.app.state.instances.runner.wait(location.rsplit("/", 1)[-1])
    page = soup(client.get(location))
    assert live_profile(ec2_client, ids["bastion"]) == ["reporting-ec2"]
    row = page.select_one(f"#outcome-{ids['bastion']}")
    assert "Changed" in row.select_one(".result").text
    assert "associated" in row.text
    assert "Done." in page.select_one(".outcome-summary").text
    assert not page.select_one("#operation-status").has_attr("hx-trigger")  # polling stopped
    assert page.select_one("noscript meta") is None
    # The operation's audit record is one click away.
    record = page.select_one('a[href^="/audit/operations/"]')["href"]
    assert record == "/audit/operations/" + location.rsplit("/", 1)[-1]
    assert "ec2:AssociateIamInstanceProfile" in client.get(record).text


def test_detach_needs_the_typed_confirmation(client, ids, ec2_client):
    data = {"action": "detach", "instance_id": ids["web-2"]}
    refused = post(client, "/instances/apply", {**data, "confirm": "yes"})
    assert refused.status_code == 422
    assert soup(refused).select_one("#confirm-error").text == "Type Detach to confirm."
    assert live_profile(ec2_client, ids["web-2"]) == ["web-app-ec2"]
    done = post(
        client, "/instances/apply", {**data, "confirm": "Detach"}, headers={"HX-Request": "true"}
    )
    assert done.status_code == 200
    location = done.headers["HX-Location"]
    client.app.state.instances.runner.wait(location.rsplit("/", 1)[-1])
    assert live_profile(ec2_client, ids["web-2"]) == []


def test_status_page_polls_while_running_and_works_without_javascript(client, seeded, ids):
    client.get("/instances")  # creates the per-app state
    ctx = AuditContext(actor="tester")
    plan = Plan(ATTACH, REGION, (InstancePlan(ids["bastion"], "bastion", "running", "associate"),))
    record_start(seeded, ctx, plan)
    runner = client.app.state.instances.runner
    runner.running = lambda operation_id: True
    url = f"/instances/operations/{ctx.operation_id}"
    page = soup(client.get(url))
    status = page.select_one("#operation-status")
    assert status["hx-trigger"] == "every 2s" and status["hx-get"] == url
    assert page.select_one('meta[http-equiv="refresh"]') is None  # no timed reload
    check = page.select_one("#operation-status noscript a")
    assert check.text == "Check progress" and check["href"] == f"{url}?wait=1"
    assert "Waiting" in page.select_one(f"#outcome-{ids['bastion']} .result").text
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and 'id="operation-status"' in fragment.text

    def finish():
        _record(seeded, ctx, FINISH_ACTION, {"region": REGION, "changed": [], "unchanged": []})
        runner.running = lambda operation_id: False

    # Without JavaScript, "Check progress" holds its request until the change moves on.
    timer = threading.Timer(0.5, finish)
    timer.start()
    checked = soup(client.get(f"{url}?wait=1"))
    timer.join()
    assert "Not changed" in checked.select_one(f"#outcome-{ids['bastion']} .result").text
    assert checked.select_one("#operation-status noscript") is None  # done: nothing to check
    finished = soup(client.get(url))
    assert not finished.select_one("#operation-status").has_attr("hx-trigger")
    assert "Not changed" in finished.select_one(f"#outcome-{ids['bastion']} .result").text


def test_unknown_operation_is_a_404(client):
    assert client.get("/instances/operations/not-a-uuid").status_code == 404
    missing = client.get("/instances/operations/6f1c1a52-9a51-4d4e-9a3f-111111111111")
    assert missing.status_code == 404


def test_role_detail_lists_the_instances_using_the_role(client, ids):
    page = soup(client.get("/roles/web-app-ec2"))
    section = page.select_one("#role-instances")
    assert "EC2 instances using this role (2)" in section.text
    listed = [code.text for code in section.select("tbody code")]
    assert sorted(listed) == sorted([ids["web-1"], ids["web-2"]])
    link = section.find("a", string="See them on the EC2 instances page")
    assert link["href"] == "/instances?region=us-east-1&role=web-app-ec2"
    assert names_listed(soup(client.get(link["href"]))) == ["web-1", "web-2"]
    lonely = soup(client.get("/roles/orders-lambda")).select_one("#role-instances")
    assert "EC2 instances using this role (0)" in lonely.text


def test_role_detail_survives_missing_ec2_permissions(client, seeded):
    from botocore.stub import Stubber

    with Stubber(seeded.clients.client("ec2", REGION)) as stubber:
        stubber.add_client_error(
            "describe_iam_instance_profile_associations",
            service_error_code="UnauthorizedOperation",
            service_message="You are not authorized to perform this operation.",
            http_status_code=403,
        )
        response = client.get("/roles/web-app-ec2")
    assert response.status_code == 200
    section = soup(response).select_one("#role-instances")
    # The default region is shown unavailable with AWS's error; the other regions were read.
    unavailable = section.select_one(".region-unavailable")
    assert f"{REGION}: unavailable" in unavailable.text
    assert "UnauthorizedOperation" in unavailable.text
    assert "lack a permission" in section.text


def test_an_operation_cut_short_by_a_restart_says_exactly_what_happened(
    client, seeded, ids, monkeypatch
):
    """A start record and one pending intent, no finish record, no thread here: while its
    entries are recent another worker process may be running it; later, RoleDesk stopped."""
    from datetime import timedelta

    from app.instances import operations
    from app.instances.listing import instance_arn
    from app.instances.service import DISASSOCIATE

    client.get("/instances")
    ctx = AuditContext(actor="tester")
    before = {
        "association_id": "x",
        "profile_arn": "y",
        "profile_name": "web-app-ec2",
        "role": "web-app-ec2",
    }
    plan = Plan(
        "detach",
        REGION,
        (
            InstancePlan(ids["web-1"], "web-1", "running", DISASSOCIATE, before=before),
            InstancePlan(ids["web-2"], "web-2", "running", DISASSOCIATE, before=before),
        ),
    )
    record_start(seeded, ctx, plan)
    target = instance_arn(REGION, seeded.identity.account, ids["web-1"])
    from app.audit.log import NewEntry

    seeded.audit_log.append(
        NewEntry(
            kind="intent",
            action="ec2:DisassociateIamInstanceProfile",
            actor="tester",
            outcome="pending",
            operation_id=ctx.operation_id,
            target=target,
            region=REGION,
        )
    )
    elsewhere = soup(client.get(f"/instances/operations/{ctx.operation_id}"))
    assert elsewhere.select_one("#operation-status").has_attr("hx-trigger")  # still polling
    assert "stopped before it finished" not in elsewhere.text
    monkeypatch.setattr(operations, "STILL_RUNNING_WINDOW", timedelta(0))
    page = soup(client.get(f"/instances/operations/{ctx.operation_id}"))
    summary = " ".join(page.select_one(".outcome-summary").text.split())
    assert "stopped before it finished" in summary and "1 unknown" in summary
    assert page.select_one(f"#outcome-{ids['web-1']} .result").text == "Unknown"
    web2 = page.select_one(f"#outcome-{ids['web-2']}")
    assert web2.select_one(".result").text == "Not started"
    assert "RoleDesk stopped before reaching this instance" in web2.text
    assert not page.select_one("#operation-status").has_attr("hx-trigger")
    # The instance not started is offered for a new run, through the usual review.
    rest = page.select_one("form.run-rest")
    assert rest["action"] == "/instances/review"
    assert [i["value"] for i in rest.select('input[name="instance_id"]')] == [ids["web-2"]]
    assert "not started" in rest.select_one("button").text


def test_attaching_a_role_with_security_warnings_needs_acknowledgement(
    client, seeded, ids, ec2_client
):
    """Issue 10's risk gate: instances act with the role's permissions."""
    from app.audit.audited import Change
    from app.wizard.trust import service_trust

    ctx = AuditContext(actor="tester")
    seeded.audited.call(
        ctx,
        Change("risky-ec2"),
        seeded.iam.create_role,
        name="risky-ec2",
        trust_policy=service_trust("ec2.amazonaws.com"),
    )
    pass_any = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iam:PassRole", "ec2:RunInstances"], "Resource": "*"}
        ],
    }
    seeded.audited.call(
        ctx,
        Change("risky-ec2"),
        seeded.iam.put_role_policy,
        role_name="risky-ec2",
        policy_name="Launch",
        document=pass_any,
    )
    try:
        _gate_refuses_without_acknowledgement(client, ids, ec2_client)
        _acknowledged_attach_is_audited(client, seeded, ids, ec2_client)
    finally:  # the sandbox is shared by the test session: leave it as seeded
        for association in ec2_client.describe_iam_instance_profile_associations()[
            "IamInstanceProfileAssociations"
        ]:
            if association["IamInstanceProfile"]["Arn"].endswith("/risky-ec2"):
                ec2_client.disassociate_iam_instance_profile(
                    AssociationId=association["AssociationId"]
                )
        for profile in seeded.iam.list_instance_profiles_for_role("risky-ec2"):
            seeded.audited.call(
                ctx,
                Change("risky-ec2"),
                seeded.iam.remove_role_from_instance_profile,
                profile_name=profile.name,
                role_name="risky-ec2",
            )
            seeded.audited.call(
                ctx, Change(profile.name), seeded.iam.delete_instance_profile, name=profile.name
            )
        seeded.audited.call(
            ctx,
            Change("risky-ec2"),
            seeded.iam.delete_role_policy,
            role_name="risky-ec2",
            policy_name="Launch",
        )
        seeded.audited.call(ctx, Change("risky-ec2"), seeded.iam.delete_role, name="risky-ec2")


def _gate_refuses_without_acknowledgement(client, ids, ec2_client):
    data = {"action": "attach", "choice": "role:risky-ec2", "instance_id": ids["bastion"]}
    review = soup(post(client, "/instances/review", data))
    boxes = review.select("#role-risks input[name=acknowledge]")
    codes = [b.find_parent("li").code.text for b in boxes]
    assert "PASSROLE_ANY_ROLE" in codes and "PRIVILEGE_ESCALATION_CreateEC2WithExistingIP" in codes
    before = live_profile(ec2_client, ids["bastion"])
    refused = post(client, "/instances/apply", {**data, "acknowledge": boxes[0]["value"]})
    assert refused.status_code == 422
    assert (
        "Acknowledge each security warning" in soup(refused).select_one("#error-acknowledge").text
    )
    assert live_profile(ec2_client, ids["bastion"]) == before


def _acknowledged_attach_is_audited(client, seeded, ids, ec2_client):
    """With every warning ticked the role is attached, and the operation's start record keeps
    the findings and the acknowledgements."""
    from sqlalchemy import select

    from app.models import AuditEvent

    free = next(i for i in ids.values() if live_profile(ec2_client, i) == [])
    data = {"action": "attach", "choice": "role:risky-ec2", "instance_id": free}
    review = soup(post(client, "/instances/review", data))
    keys = [b["value"] for b in review.select("#role-risks input[name=acknowledge]")]
    applied = post(
        client, "/instances/apply", {**data, "acknowledge": keys}, follow_redirects=False
    )
    assert applied.status_code == 303
    operation_id = applied.headers["location"].rsplit("/", 1)[-1]
    client.app.state.instances.runner.wait(operation_id)
    assert live_profile(ec2_client, free) == ["risky-ec2"]
    with seeded.db.session() as session:
        start = session.scalars(
            select(AuditEvent.params)
            .where(AuditEvent.operation_id == operation_id, AuditEvent.kind == "record")
            .order_by(AuditEvent.seq)
        ).first()
    assert sorted(start["policy_review"]["acknowledged"]) == sorted(keys)
    assert {f["code"] for f in start["policy_review"]["findings"]} >= {"PASSROLE_ANY_ROLE"}
