"""Changing an existing role from its page, checked in the sandbox through boto3: trust policy,
settings, revoke sessions, delete with the console's cascade (and a failure at each step, then
a retry that finishes), changed behind your back, service-linked refusal, viewers refused."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from bs4 import BeautifulSoup

from app.audit.audited import AuditContext, Change
from app.roles.changes import REVOKE_POLICY, revoke_document
from app.wizard.trust import service_trust
from tests.conftest import csrf_token_for
from tests.security.aws_calls import AwsCalls

TRUST = service_trust("ec2.amazonaws.com")
LAMBDA_TRUST = service_trust("lambda.amazonaws.com")


def soup(response):
    return BeautifulSoup(response.text, "html.parser")


def post(client, url, data):
    return client.post(
        url, data={**data, "csrf_token": csrf_token_for(client)}, follow_redirects=False
    )


def make_role(services, name, policies=(), inline=(), profile=False, path="/"):
    iam, ctx = services.iam, AuditContext(actor="setup")
    services.audited.call(
        ctx, Change(name), iam.create_role, name=name, trust_policy=TRUST, path=path
    )
    for arn in policies:
        services.audited.call(
            ctx, Change(name), iam.attach_role_policy, role_name=name, policy_arn=arn
        )
    for pname in inline:
        doc = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
        }
        services.audited.call(
            ctx, Change(name), iam.put_role_policy, role_name=name, policy_name=pname, document=doc
        )
    if profile:
        services.audited.call(ctx, Change(name), iam.create_instance_profile, name=name)
        services.audited.call(
            ctx, Change(name), iam.add_role_to_instance_profile, profile_name=name, role_name=name
        )


def boto(sandbox):
    import boto3

    return boto3.client(
        "iam",
        endpoint_url=sandbox.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def form_fields(page, action):
    form = page.select_one(f'form[action="{action}"]')
    return {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}


def test_trust_policy_edit_reviews_a_diff_and_applies(client, seeded, sandbox):
    make_role(seeded, "edit-trust")
    page = soup(client.get("/roles/edit-trust/trust/edit"))
    base = page.select_one('input[name="base"]')["value"]
    bad = post(client, "/roles/edit-trust/trust/review", {"document": '{"Version": ', "base": base})
    assert (
        bad.status_code == 422 and "Line 1, column" in soup(bad).select_one("#document-errors").text
    )
    new = json.dumps(LAMBDA_TRUST, indent=2)
    review = post(client, "/roles/edit-trust/trust/review", {"document": new, "base": base})
    assert review.status_code == 200
    diff = soup(review).select_one("#change-diff").text
    assert "+" in diff and "lambda.amazonaws.com" in diff and "ec2.amazonaws.com" in diff
    fields = form_fields(soup(review), "/roles/edit-trust/trust/apply")
    applied = post(client, "/roles/edit-trust/trust/apply", fields)
    assert applied.status_code == 303
    doc = boto(sandbox).get_role(RoleName="edit-trust")["Role"]["AssumeRolePolicyDocument"]
    assert doc["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    # One audited operation; its event shows the before/after diff of the document.
    from sqlalchemy import select

    from app.models import AuditEvent

    with seeded.db.session() as session:
        seq = session.scalar(
            select(AuditEvent.seq).where(
                AuditEvent.action == "iam:UpdateAssumeRolePolicy", AuditEvent.kind == "intent"
            )
        )
    event = soup(client.get(f"/audit/events/{seq}")).select_one("pre.diff").text
    lines = event.splitlines()
    assert any(x.startswith("-") and "ec2.amazonaws.com" in x for x in lines)
    assert any(x.startswith("+") and "lambda.amazonaws.com" in x for x in lines)


def test_changed_behind_your_back_applies_nothing(client, seeded, sandbox):
    make_role(seeded, "raced")
    base = soup(client.get("/roles/raced/trust/edit")).select_one('input[name="base"]')["value"]
    # Someone changes the trust policy in the console meanwhile.
    other = service_trust("ecs-tasks.amazonaws.com")
    boto(sandbox).update_assume_role_policy(RoleName="raced", PolicyDocument=json.dumps(other))
    mine = json.dumps(LAMBDA_TRUST, indent=2)
    refused = post(client, "/roles/raced/trust/apply", {"document": mine, "base": base})
    assert refused.status_code == 409
    assert "ecs-tasks.amazonaws.com" in soup(refused).select_one("#current-state").text
    doc = boto(sandbox).get_role(RoleName="raced")["Role"]["AssumeRolePolicyDocument"]
    assert doc["Statement"][0]["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}


def test_settings_with_a_preset_and_a_custom_duration(client, seeded, sandbox):
    make_role(seeded, "settings-role")
    base = soup(client.get("/roles/settings-role/settings/edit")).select_one('input[name="base"]')[
        "value"
    ]
    wrong = post(
        client,
        "/roles/settings-role/settings/review",
        {"description": "x", "preset": "custom", "max_session_seconds": "3599", "base": base},
    )
    assert wrong.status_code == 422 and soup(wrong).select_one("#seconds-error")
    review = post(
        client,
        "/roles/settings-role/settings/review",
        {"description": "Runs the app", "preset": "4", "max_session_seconds": "", "base": base},
    )
    assert "14400 s" in soup(review).select_one("#change-rows").text
    fields = form_fields(soup(review), "/roles/settings-role/settings/apply")
    assert post(client, "/roles/settings-role/settings/apply", fields).status_code == 303
    role = boto(sandbox).get_role(RoleName="settings-role")["Role"]
    assert role["Description"] == "Runs the app" and role["MaxSessionDuration"] == 14400
    # Any whole number of seconds in range, not only the presets.
    base = soup(client.get("/roles/settings-role/settings/edit")).select_one('input[name="base"]')
    custom = {"preset": "custom", "max_session_seconds": "5400", "base": base["value"]}
    review = post(client, "/roles/settings-role/settings/review", {"description": "", **custom})
    fields = form_fields(soup(review), "/roles/settings-role/settings/apply")
    assert post(client, "/roles/settings-role/settings/apply", fields).status_code == 303
    role = boto(sandbox).get_role(RoleName="settings-role")["Role"]
    assert role["MaxSessionDuration"] == 5400 and not role.get("Description")


def test_after_a_change_the_role_page_says_what_was_applied(client, seeded, sandbox):
    """As the console's banner: the change's redirect names it on the role's page, with its
    AWS calls and its audit record; an address with any other id says nothing."""
    make_role(seeded, "applied-role")
    edit = soup(client.get("/roles/applied-role/settings/edit"))
    base = edit.select_one('input[name="base"]')["value"]
    review = post(
        client,
        "/roles/applied-role/settings/review",
        {"description": "Nightly jobs", "preset": "1", "max_session_seconds": "", "base": base},
    )
    fields = form_fields(soup(review), "/roles/applied-role/settings/apply")
    done = post(client, "/roles/applied-role/settings/apply", fields)
    assert done.status_code == 303
    location = done.headers["location"]
    assert location.startswith("/roles/applied-role?applied=") and "section=summary" in location
    notice = soup(client.get(location)).select_one("#applied")
    assert notice["role"] == "status"
    assert "Change applied." in notice.text and "applied-role" in notice.text
    assert "1 AWS call, all succeeded" in notice.text
    audit = notice.select_one('a[href^="/audit/operations/"]')["href"]
    steps = client.get(audit)
    assert steps.status_code == 200 and "iam:UpdateRole" in steps.text
    assert notice.select_one('a[href="#summary"]') is not None
    # An id of no operation: the role's page, nothing more.
    unknown = "00000000-0000-4000-8000-000000000000"
    page = client.get(f"/roles/applied-role?applied={unknown}&section=summary")
    assert page.status_code == 200 and soup(page).select_one("#applied") is None
    # Not shaped as the redirect writes them: refused before the page reads AWS.
    for query in ("applied=not-an-id", "applied=" + "x" * 64, "section=..%2Fusers"):
        assert client.get(f"/roles/applied-role?{query}").status_code == 422, query


def test_a_change_aws_refuses_shows_what_failed(client, seeded, monkeypatch):
    """The failure page of a role change, not a 500 (it met an undefined name in its title):
    what failed, with AWS's code, and a link to the operation's record."""
    from botocore.exceptions import ClientError

    make_role(seeded, "refused-role")
    iam = seeded.clients.client("iam")

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "ServiceFailure", "Message": "injected"}}, "x")

    base = soup(client.get("/roles/refused-role/settings/edit")).select_one('input[name="base"]')
    review = post(
        client,
        "/roles/refused-role/settings/review",
        {"description": "Never", "preset": "1", "max_session_seconds": "", "base": base["value"]},
    )
    fields = form_fields(soup(review), "/roles/refused-role/settings/apply")
    monkeypatch.setattr(iam, "update_role", refuse)
    failed = post(client, "/roles/refused-role/settings/apply", fields)
    assert failed.status_code == 502
    page = soup(failed)
    assert "refused-role" in page.title.text
    assert "ServiceFailure" in page.select_one("table.operation-steps").text
    record = page.select_one('a[href^="/audit/operations/"]')["href"]
    assert client.get(record).status_code == 200
    # Its id in the role page's address announces nothing: it did not apply.
    operation_id = record.rsplit("/", 1)[-1]
    role_page = client.get(f"/roles/refused-role?applied={operation_id}&section=summary")
    assert role_page.status_code == 200 and soup(role_page).select_one("#applied") is None


def test_revoke_sessions_puts_the_console_policy_and_the_page_shows_when(client, seeded, sandbox):
    make_role(seeded, "revoke-me")
    earlier = "2020-01-01T00:00:00Z"  # a revoke made before (in the console, say)
    boto(sandbox).put_role_policy(
        RoleName="revoke-me",
        PolicyName=REVOKE_POLICY,
        PolicyDocument=json.dumps(revoke_document(datetime(2020, 1, 1, tzinfo=UTC))),
    )
    assert soup(client.get("/roles/revoke-me/revoke")).select_one("#last-revoked").text == earlier
    unconfirmed = post(client, "/roles/revoke-me/revoke", {})
    assert unconfirmed.status_code == 422
    assert post(client, "/roles/revoke-me/revoke", {"confirm": "yes"}).status_code == 303
    doc = boto(sandbox).get_role_policy(RoleName="revoke-me", PolicyName=REVOKE_POLICY)[
        "PolicyDocument"
    ]
    statement = doc["Statement"][0]
    assert statement["Effect"] == "Deny" and statement["Action"] == ["*"]
    when = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    assert when.endswith("Z") and len(when) == 20 and when > earlier  # the later time replaces it
    names = boto(sandbox).list_role_policies(RoleName="revoke-me")["PolicyNames"]
    assert names == [REVOKE_POLICY]
    assert soup(client.get("/roles/revoke-me")).select_one("#last-revoked").text == when


def test_delete_runs_the_whole_cascade(client, seeded, sandbox):
    make_role(
        seeded, "doomed", ["arn:aws:iam::aws:policy/ReadOnlyAccess"], ["one", "two"], profile=True
    )
    page = soup(client.get("/roles/doomed/delete"))
    radius = page.select_one("#blast-radius").text
    assert "ReadOnlyAccess" in radius and "one" in radius and "doomed" in radius
    fields = form_fields(page, "/roles/doomed/delete")
    wrong = post(client, "/roles/doomed/delete", {**fields, "confirm": "delete"})
    assert wrong.status_code == 422
    done = post(client, "/roles/doomed/delete", {**fields, "confirm": "doomed"})
    assert done.status_code == 303
    iam = boto(sandbox)
    assert "doomed" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert "doomed" not in [
        p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
    ]
    assert "doomed" not in [r.name for r in seeded.inventory.page(search="doomed").rows]


@pytest.mark.parametrize(
    "failing",
    [
        "remove_role_from_instance_profile",
        "delete_instance_profile",
        "detach_role_policy",
        "delete_role_policy",
        "delete_role",
    ],
)
def test_a_failed_delete_step_stops_and_a_retry_finishes(
    client, seeded, sandbox, monkeypatch, failing
):
    from botocore.exceptions import ClientError

    make_role(seeded, "half", ["arn:aws:iam::aws:policy/ReadOnlyAccess"], ["one"], profile=True)
    client_ = seeded.clients.client("iam")
    real = getattr(client_, failing)

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "ServiceFailure", "Message": "injected"}}, failing)

    monkeypatch.setattr(client_, failing, refuse)
    fields = form_fields(soup(client.get("/roles/half/delete")), "/roles/half/delete")
    stopped = post(client, "/roles/half/delete", {**fields, "confirm": "half"})
    assert stopped.status_code == 502
    table = soup(stopped).select_one("table.operation-steps").text
    assert "Failed" in table
    assert "half" in [r["RoleName"] for r in boto(sandbox).list_roles()["Roles"]]
    monkeypatch.setattr(client_, failing, real)
    fields = form_fields(soup(client.get("/roles/half/delete")), "/roles/half/delete")
    assert post(client, "/roles/half/delete", {**fields, "confirm": "half"}).status_code == 303
    assert "half" not in [r["RoleName"] for r in boto(sandbox).list_roles()["Roles"]]


def test_service_linked_roles_are_refused_with_the_command(client, seeded):
    make_role(seeded, "AWSServiceRoleForThing", path="/aws-service-role/thing.amazonaws.com/")
    page = soup(client.get("/roles/AWSServiceRoleForThing/delete"))
    assert (
        "aws iam delete-service-linked-role --role-name AWSServiceRoleForThing"
        in page.select_one("#refusal").text
    )
    refused = post(
        client, "/roles/AWSServiceRoleForThing/delete", {"confirm": "AWSServiceRoleForThing"}
    )
    assert refused.status_code == 422


def test_viewers_see_no_change_controls_and_are_refused(client_as, seeded):
    make_role(seeded, "look-only")
    viewer = client_as("viewer")
    page = soup(viewer.get("/roles/look-only"))
    assert page.select_one('a[href$="/trust/edit"]') is None and page.select_one("#revoke") is None
    assert viewer.get("/roles/look-only/delete").status_code == 403
    assert post(viewer, "/roles/look-only/revoke", {"confirm": "yes"}).status_code == 403


READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
S3_READ = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"


def apply_reviewed(client, review, action):
    page = soup(review)
    form = page.select_one(f'form[action="{action}"]')
    data = {}
    for i in form.select("input[type=hidden]"):
        data.setdefault(i["name"], []).append(i.get("value", ""))
    data = {
        k: v if len(v) > 1 or k in ("attach", "detach", "tag_key", "tag_value") else v[0]
        for k, v in data.items()
    }
    return client.post(action, data=data, follow_redirects=False)


def test_attach_and_detach_managed_policies(client, seeded, sandbox):
    make_role(seeded, "perm-role", [READ_ONLY])
    page = soup(client.get("/roles/perm-role/policies/edit?q=AmazonS3ReadOnly"))
    assert page.select_one(f'input[name="attach"][value="{S3_READ}"]')
    base = page.select_one('input[name="base"]')["value"]
    review = post(
        client,
        "/roles/perm-role/policies/review",
        {"attach": [S3_READ], "detach": [READ_ONLY], "base": base},
    )
    assert review.status_code == 200
    assert S3_READ in soup(review).select_one("#change-attach").text
    assert READ_ONLY in soup(review).select_one("#change-detach").text
    assert apply_reviewed(client, review, "/roles/perm-role/policies/apply").status_code == 303
    arns = [
        p["PolicyArn"]
        for p in boto(sandbox).list_attached_role_policies(RoleName="perm-role")["AttachedPolicies"]
    ]
    assert arns == [S3_READ]


def test_attaching_beyond_the_quota_is_refused(client, seeded):
    make_role(seeded, "full-role")
    page = soup(client.get("/roles/full-role/policies/edit?q=ReadOnly"))
    base = page.select_one('input[name="base"]')["value"]
    many = [i["value"] for i in page.select('input[name="attach"]')][:11]
    assert len(many) == 11
    refused = post(client, "/roles/full-role/policies/review", {"attach": many, "base": base})
    assert refused.status_code == 422
    assert "the account allows 10 per role" in soup(refused).select_one("#attach-error").text


def test_inline_policy_add_edit_delete_and_the_aggregate_limit(client, seeded, sandbox):
    make_role(seeded, "inline-role")
    base = soup(client.get("/roles/inline-role/inline/edit")).select_one('input[name="base"]')[
        "value"
    ]
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    review = post(
        client,
        "/roles/inline-role/inline/review",
        {"policy_name": "reader", "original": "", "document": json.dumps(doc), "base": base},
    )
    assert (
        review.status_code == 200 and "s3:GetObject" in soup(review).select_one("#change-diff").text
    )
    assert apply_reviewed(client, review, "/roles/inline-role/inline/apply").status_code == 303
    iam = boto(sandbox)
    assert iam.get_role_policy(RoleName="inline-role", PolicyName="reader")["PolicyDocument"] == doc
    # Edit it.
    page = soup(client.get("/roles/inline-role/inline/edit?policy=reader"))
    base = page.select_one('input[name="base"]')["value"]
    doc["Statement"][0]["Action"] = "s3:ListBucket"
    review = post(
        client,
        "/roles/inline-role/inline/review",
        {"policy_name": "reader", "original": "reader", "document": json.dumps(doc), "base": base},
    )
    assert apply_reviewed(client, review, "/roles/inline-role/inline/apply").status_code == 303
    assert iam.get_role_policy(RoleName="inline-role", PolicyName="reader")["PolicyDocument"] == doc
    # Too big altogether (10,240 characters for all inline policies of the role).
    big = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [f"s3:Get{'x' * 30}{i}" for i in range(300)],
                "Resource": "*",
            }
        ],
    }
    base = soup(client.get("/roles/inline-role/inline/edit")).select_one('input[name="base"]')[
        "value"
    ]
    refused = post(
        client,
        "/roles/inline-role/inline/review",
        {"policy_name": "big", "original": "", "document": json.dumps(big), "base": base},
    )
    assert (
        refused.status_code == 422
        and "10,240" in soup(refused).select_one("#policy-name-error").text
    )
    # Delete it.
    review = client.get("/roles/inline-role/inline/delete?policy=reader")
    assert apply_reviewed(client, review, "/roles/inline-role/inline/delete").status_code == 303
    assert iam.list_role_policies(RoleName="inline-role")["PolicyNames"] == []


def test_boundary_set_and_remove(client, seeded, sandbox):
    make_role(seeded, "bounded")
    base = soup(client.get("/roles/bounded/boundary/edit")).select_one('input[name="base"]')[
        "value"
    ]
    wrong = post(
        client,
        "/roles/bounded/boundary/review",
        {"boundary_arn": "arn:aws:iam::aws:policy/Nope", "base": base},
    )
    assert wrong.status_code == 422
    review = post(
        client, "/roles/bounded/boundary/review", {"boundary_arn": READ_ONLY, "base": base}
    )
    assert apply_reviewed(client, review, "/roles/bounded/boundary/apply").status_code == 303
    iam = boto(sandbox)
    assert (
        iam.get_role(RoleName="bounded")["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"]
        == READ_ONLY
    )
    base = soup(client.get("/roles/bounded/boundary/edit")).select_one('input[name="base"]')[
        "value"
    ]
    review = post(client, "/roles/bounded/boundary/review", {"remove": "yes", "base": base})
    assert apply_reviewed(client, review, "/roles/bounded/boundary/apply").status_code == 303
    assert "PermissionsBoundary" not in iam.get_role(RoleName="bounded")["Role"]


def test_tags_add_change_and_remove(client, seeded, sandbox):
    make_role(seeded, "tagged")
    iam = boto(sandbox)
    iam.tag_role(
        RoleName="tagged", Tags=[{"Key": "team", "Value": "a"}, {"Key": "old", "Value": "x"}]
    )
    page = soup(client.get("/roles/tagged/tags/edit"))
    base = page.select_one('input[name="base"]')["value"]
    bad = post(
        client,
        "/roles/tagged/tags/review",
        {"tag_key": ["aws:nope", "team"], "tag_value": ["1", "b"], "base": base},
    )
    assert bad.status_code == 422
    review = post(
        client,
        "/roles/tagged/tags/review",
        {"tag_key": ["team", "env", ""], "tag_value": ["b", "prod", ""], "base": base},
    )
    text = soup(review)
    assert "env = prod" in text.select_one("#change-add").text
    assert "team: a → b" in text.select_one("#change-change").text
    assert "old = x" in text.select_one("#change-remove").text
    assert apply_reviewed(client, review, "/roles/tagged/tags/apply").status_code == 303
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName="tagged")["Tags"]}
    assert tags == {"team": "b", "env": "prod"}


def test_bulk_delete_of_three_roles_from_the_list(client, seeded, sandbox):
    make_role(seeded, "bulk-a", [READ_ONLY])
    make_role(seeded, "bulk-b", inline=["x"])
    make_role(seeded, "bulk-c", profile=True)
    make_role(seeded, "AWSServiceRoleForBulk", path="/aws-service-role/bulk.amazonaws.com/")
    seeded.inventory.refresh()
    listing = soup(client.get("/roles?q=bulk"))
    boxes = listing.select('input[type="checkbox"][form="bulk-delete"]')
    assert {b["value"] for b in boxes} >= {"bulk-a", "bulk-b", "bulk-c"}
    names = ["bulk-a", "bulk-b", "bulk-c", "AWSServiceRoleForBulk"]
    review = post(client, "/roles/bulk-delete/review", {"name": names})
    page = soup(review)
    assert "delete-service-linked-role" in page.select_one(".refused").text
    assert len(page.select("#bulk-radius tbody tr")) == 3
    # No role of its own: no empty link to one in the breadcrumb.
    crumbs = page.select("nav[aria-label=breadcrumb] li")
    assert [c.text for c in crumbs] == ["Roles", "Delete roles"]
    assert page.select_one("title").text.startswith("Delete roles · ")
    assert (
        post(client, "/roles/bulk-delete", {"name": names, "confirm": "bulk-a"}).status_code == 422
    )
    done = post(client, "/roles/bulk-delete", {"name": names, "confirm": "delete"})
    assert done.status_code == 303
    operation = done.headers["location"]
    seeded.runs.wait(operation.rsplit("/", 1)[-1])
    left = {r["RoleName"] for r in boto(sandbox).list_roles()["Roles"]}
    assert not left & {"bulk-a", "bulk-b", "bulk-c"} and "AWSServiceRoleForBulk" in left
    status = soup(client.get(operation))
    assert "Done." in status.select_one(".outcome-summary").text
    assert not status.select_one("#run-status").has_attr("hx-trigger")
    record = status.select_one('a[href^="/audit/operations/"]')["href"]
    assert record == "/audit/operations/" + operation.rsplit("/", 1)[-1]
    fragment = client.get(operation, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and "operation-steps" in fragment.text


def test_operation_page_without_javascript_checks_progress_on_request(client, seeded):
    """A run's progress page never reloads itself (WCAG 2.2.1); without JavaScript its
    "Check progress" link's request waits until a call settles, then shows it."""
    make_role(seeded, "slow-delete", [READ_ONLY])
    seeded.inventory.refresh()
    reached, release = threading.Event(), threading.Event()
    events = seeded.clients.client("iam").meta.events

    def hold(**_kwargs):
        reached.set()
        release.wait(20)  # AWS is slow to delete the role

    events.register_first("before-call.iam.DeleteRole", hold)
    try:
        done = post(client, "/roles/bulk-delete", {"name": ["slow-delete"], "confirm": "delete"})
        operation = done.headers["location"]
        assert reached.wait(20)
        page = soup(client.get(operation))
        assert page.select_one('meta[http-equiv="refresh"]') is None
        assert page.select_one("#run-status")["hx-trigger"] == "every 1s"
        check = page.select_one("#run-status noscript a")
        assert check.text == "Check progress" and check["href"] == f"{operation}?wait=1"
        timer = threading.Timer(0.5, release.set)
        timer.start()
        checked = soup(client.get(check["href"]))
        timer.join()
    finally:
        release.set()
        events.unregister("before-call.iam.DeleteRole", hold)
    rows = {
        r.select_one("td").text: r.select_one(".step-status").text
        for r in checked.select("table.operation-steps tbody tr")
    }
    assert rows["slow-delete: Delete role slow-delete"] == "Done", rows
    seeded.runs.wait(operation.rsplit("/", 1)[-1])


def test_delete_blast_radius_names_the_instances_using_the_role(client, seeded):
    page = soup(client.get("/roles/web-app-ec2/delete"))
    radius = page.select_one("#blast-radius").text
    assert "web-1" in radius and "web-2" in radius and "us-east-1" in radius


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def _audited_review(services, action):
    from sqlalchemy import select

    from app.models import AuditEvent

    with services.db.session() as session:
        params = session.scalars(
            select(AuditEvent.params)
            .where(AuditEvent.action == action, AuditEvent.kind == "intent")
            .order_by(AuditEvent.seq.desc())
        ).first()
    return params["policy_review"]


def test_a_change_that_brings_a_security_warning_needs_its_named_acknowledgement(
    client, seeded, sandbox
):
    """Issue 10's risk gate on the role page: attaching AdministratorAccess is applied only
    once its ADMIN_ACCESS warning is ticked, and the acknowledgement is in the audit event."""
    make_role(seeded, "gate-role")
    base = soup(client.get("/roles/gate-role/policies/edit?q=AdministratorAccess")).select_one(
        'input[name="base"]'
    )["value"]
    review = post(client, "/roles/gate-role/policies/review", {"attach": [ADMIN], "base": base})
    boxes = soup(review).select('#change-risks input[name="acknowledge"]')
    assert [b["value"].split(":")[0] for b in boxes] == ["ADMIN_ACCESS"]
    refused = apply_reviewed(client, review, "/roles/gate-role/policies/apply")
    assert refused.status_code == 422
    assert (
        "Acknowledge each security warning" in soup(refused).select_one("#error-acknowledge").text
    )
    iam = boto(sandbox)
    assert iam.list_attached_role_policies(RoleName="gate-role")["AttachedPolicies"] == []

    page = soup(review)
    form = page.select_one('form[action="/roles/gate-role/policies/apply"]')
    data = {i["name"]: i.get("value", "") for i in form.select("input[type=hidden]")}
    data["attach"] = [ADMIN]
    data["acknowledge"] = boxes[0]["value"]
    applied = client.post("/roles/gate-role/policies/apply", data=data, follow_redirects=False)
    assert applied.status_code == 303
    attached = iam.list_attached_role_policies(RoleName="gate-role")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ADMIN]
    kept = _audited_review(seeded, "iam:AttachRolePolicy")
    assert kept["acknowledged"] == [boxes[0]["value"]]
    assert any(f["code"] == "ADMIN_ACCESS" for f in kept["findings"])

    # Detaching it brings no new warning: no box to tick, applied at once.
    base = soup(client.get("/roles/gate-role/policies/edit")).select_one('input[name="base"]')[
        "value"
    ]
    review = post(client, "/roles/gate-role/policies/review", {"detach": [ADMIN], "base": base})
    assert not soup(review).select('input[name="acknowledge"]')
    assert apply_reviewed(client, review, "/roles/gate-role/policies/apply").status_code == 303
    assert iam.list_attached_role_policies(RoleName="gate-role")["AttachedPolicies"] == []


def test_a_trust_policy_open_to_any_account_needs_its_acknowledgement(client, seeded, sandbox):
    make_role(seeded, "gate-trust")
    base = soup(client.get("/roles/gate-trust/trust/edit")).select_one('input[name="base"]')[
        "value"
    ]
    anyone = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    review = post(
        client, "/roles/gate-trust/trust/review", {"document": json.dumps(anyone), "base": base}
    )
    boxes = soup(review).select('#change-risks input[name="acknowledge"]')
    assert boxes, "the open trust must be named for acknowledgement"
    fields = form_fields(soup(review), "/roles/gate-trust/trust/apply")
    assert post(client, "/roles/gate-trust/trust/apply", fields).status_code == 422
    doc = boto(sandbox).get_role(RoleName="gate-trust")["Role"]["AssumeRolePolicyDocument"]
    assert doc["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    ticked = {**fields, "acknowledge": [b["value"] for b in boxes]}
    assert post(client, "/roles/gate-trust/trust/apply", ticked).status_code == 303
    doc = boto(sandbox).get_role(RoleName="gate-trust")["Role"]["AssumeRolePolicyDocument"]
    assert doc["Statement"][0]["Principal"] == {"AWS": "*"}


def test_the_editors_check_as_you_type_and_send_nothing_to_aws(client, seeded):
    """The role page's trust and inline editors post to a live check (htmx); its findings are
    the analysis of the text as typed, and the text is never sent to AWS."""
    make_role(seeded, "live-check")
    edit = soup(client.get("/roles/live-check/trust/edit"))
    editor = edit.select_one("#field-document")
    assert editor["hx-post"] == "/roles/live-check/check/trust"
    assert edit.select_one("#document-findings") is not None
    anyone = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    calls = AwsCalls()  # other tests' background runs may call AWS meanwhile: look for ours
    seeded.clients.hook_every_client("before-call", calls)
    found = post(client, "/roles/live-check/check/trust", {"document": json.dumps(anyone)})
    assert found.status_code == 200
    assert "security warning" in soup(found).select_one("#document-findings").text.lower()
    broken = post(client, "/roles/live-check/check/inline", {"document": '{"Version": '})
    assert "Line 1, column" in soup(broken).select_one("#document-findings").text
    assert not [c for c in calls.calls if "live-check" in str(c[1])]
    client.get("/roles/live-check/trust/edit")  # the hook does see this page's GetRole
    assert [c for c in calls.calls if "live-check" in str(c[1])]
    assert post(client, "/roles/live-check/check/other", {"document": "{}"}).status_code == 404


def test_a_permissions_review_reads_what_the_role_holds_once(client, seeded):
    """The risks before and after the change come from one read of the role's policies (on
    real AWS each call is 50-300 ms)."""
    make_role(seeded, "read-once", [READ_ONLY], inline=["reader"])
    base = soup(client.get("/roles/read-once/policies/edit")).select_one('input[name="base"]')[
        "value"
    ]
    calls = AwsCalls()
    seeded.clients.hook_every_client("before-call", calls)
    review = post(client, "/roles/read-once/policies/review", {"detach": [READ_ONLY], "base": base})
    assert review.status_code == 200
    ours = [op for op, body in calls.calls if "read-once" in str(body)]
    assert ours.count("ListRolePolicies") == 1 and ours.count("GetRolePolicy") == 1, ours


def test_instances_using_the_role_are_read_in_every_region_and_a_failing_one_is_shown(
    client, seeded, sandbox
):
    """The role page and the delete's blast radius read every region RoleDesk knows, side by
    side; a region AWS refuses is shown unavailable with AWS's error, the others still are."""
    import boto3
    from botocore.stub import Stubber

    from app.sandbox_seed import SANDBOX_IMAGE_ID

    make_role(seeded, "far-role", profile=True)
    far = boto3.client(
        "ec2",
        endpoint_url=sandbox.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    instance = far.run_instances(
        ImageId=SANDBOX_IMAGE_ID,
        MinCount=1,
        MaxCount=1,
        IamInstanceProfile={"Name": "far-role"},
    )["Instances"][0]["InstanceId"]
    refusing = "ap-southeast-2"
    with Stubber(seeded.clients.client("ec2", refusing)) as stubber:
        stubber.add_client_error(
            "describe_iam_instance_profile_associations",
            service_error_code="UnauthorizedOperation",
            service_message="You are not authorized to perform this operation.",
            http_status_code=403,
        )
        page = soup(client.get("/roles/far-role"))
        stubber.assert_no_pending_responses()
    section = page.select_one("#role-instances")
    assert "EC2 instances using this role (1)" in section.text
    row = section.select_one("tbody tr").text
    assert instance in row and "eu-west-1" in row
    unavailable = section.select(".region-unavailable")
    assert len(unavailable) == 1
    assert f"{refusing}: unavailable" in unavailable[0].text
    assert "UnauthorizedOperation" in unavailable[0].text

    radius = soup(client.get("/roles/far-role/delete")).select_one("#blast-radius").text
    assert f"{instance}, eu-west-1" in radius
