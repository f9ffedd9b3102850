"""The accounts page and the cross-account pair's pages over HTTP, without JavaScript:
form -> review -> apply (303 to the engine's progress page) -> done page; errors beside the
field with 422 and no change made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from app.accounts.hub import AccountHub
from app.accounts.pair import EXTERNAL_ID, Pair, pair_plan, run_pair
from app.audit.audited import AuditContext
from app.main import create_app
from app.operations.engine import Engine
from app.services import Services
from app.wizard.trust import service_trust
from tests.accounts.conftest import Refuse, account, fresh_clients
from tests.conftest import csrf_token_for, signed_in
from tests.security.aws_calls import AwsCalls


@pytest.fixture
def app_hub(org: Services) -> tuple[Any, AccountHub]:
    app = create_app(org)
    # The pages' hub, with clients of its own, so this test's hooks stay in this test.
    hub = AccountHub(org.settings, fresh_clients(org), org.identity.account)
    app.state.account_hub = hub
    return app, hub


@pytest.fixture
def operator(app_hub: tuple[Any, AccountHub]) -> Iterator[TestClient]:
    with signed_in(app_hub[0], "olivia", "operator") as client:
        yield client


TRUST = service_trust("ec2.amazonaws.com")


def form_for(members: list[str], **changes: str) -> dict[str, str]:
    values = {
        "source_account": members[1],
        "source_role": "staging-deploy",
        "target_account": members[2],
        "role_name": "from-staging-web",
        "condition": "external_id",
        "external_id": "web-4411",
        "description": "Staging's pipeline reads production",
        "managed_policies": "arn:aws:iam::aws:policy/ReadOnlyAccess",
    }
    return {**values, **changes}


# A policy in account A that takes the name RoleDesk would use; what it allows is beside the point.
DENY_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
)


def soup(response: Any) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def test_the_accounts_page_shows_an_unreachable_account_beside_working_ones(
    app_hub: tuple[Any, AccountHub], operator: TestClient, members: list[str]
):
    _, hub = app_hub
    hub.hub_clients.hook_every_client(
        "before-call.sts.AssumeRole", Refuse({"RoleArn": account(hub, members[0]).role_arn})
    )
    page = soup(operator.get("/accounts"))
    rows = {
        r["id"]: r.select_one(".account-status").get_text(" ", strip=True)
        for r in page.select("#accounts tbody tr")
    }
    assert len(rows) == 4
    assert rows[f"account-{members[0]}"].startswith("Unavailable")
    assert "AccessDenied" in rows[f"account-{members[0]}"]
    assert "refused-1" in rows[f"account-{members[0]}"]
    assert all(rows[f"account-{m}"] == "Available" for m in members[1:])


def test_invalid_input_is_refused_beside_the_field_before_any_iam_call(
    app_hub: tuple[Any, AccountHub], operator: TestClient, members: list[str]
):
    calls = AwsCalls()
    app_hub[1].hub_clients.hook_every_client("before-call.iam", calls)
    data = form_for(
        members,
        role_name="bad name!",
        target_account=members[1],
        external_id="x",
        managed_policies="not-an-arn",
        csrf_token=csrf_token_for(operator),
    )
    response = operator.post("/accounts/pairs/review", data=data)
    assert response.status_code == 422
    page = soup(response)
    for field in ("role_name", "target_account", "external_id", "managed_policies"):
        assert page.select_one(f"#error-{field}").get_text(strip=True), field
        assert page.select_one(f"#field-{field}")["aria-invalid"] == "true"
    assert calls.calls == []


def test_an_unknown_permission_kind_is_refused_beside_the_field_before_any_iam_call(
    app_hub: tuple[Any, AccountHub], operator: TestClient, members: list[str]
):
    calls = AwsCalls()
    app_hub[1].hub_clients.hook_every_client("before-call.iam", calls)
    data = form_for(members, source_policy="group", csrf_token=csrf_token_for(operator))
    for url in ("/accounts/pairs/review", "/accounts/pairs"):
        response = operator.post(url, data=data)
        assert response.status_code == 422
        page = soup(response)
        assert "Choose an inline policy or a customer managed policy" in (
            page.select_one("#error-source_policy").get_text()
        )
        assert page.select_one("#field-source_policy")["aria-invalid"] == "true"
        # The form comes back with the default chosen, not the refused value.
        assert page.select_one("input[name=source_policy][checked]")["value"] == "inline"
    assert calls.calls == []


@pytest.mark.parametrize(
    ("role_name", "spelling", "path"),
    [
        ("from-staging-taken", str, "/"),
        # IAM policy names are unique in an account regardless of case and path
        # (CreatePolicy's PolicyName, IAM API reference): these clash as well.
        ("from-staging-case", str.lower, "/"),
        ("from-staging-path", str, "/team/"),
    ],
)
def test_a_managed_policy_name_taken_in_account_a_is_refused_beside_the_field(
    app_hub: tuple[Any, AccountHub],
    operator: TestClient,
    members: list[str],
    role_name: str,
    spelling: Any,
    path: str,
):
    hub = app_hub[1]
    name = spelling(f"AssumeRole-{members[2]}-{role_name}")
    hub.clients(account(hub, members[1]), "t").client("iam").create_policy(
        PolicyName=name, Path=path, PolicyDocument=DENY_ALL
    )
    data = form_for(
        members,
        role_name=role_name,
        source_policy="managed",
        csrf_token=csrf_token_for(operator),
    )
    response = operator.post("/accounts/pairs/review", data=data)
    assert response.status_code == 422
    page = soup(response)
    error = page.select_one("#error-source_policy").get_text()
    assert f"arn:aws:iam::{members[1]}:policy{path}{name}" in error
    assert page.select_one("input[name=source_policy][checked]")["value"] == "managed"
    # The inline choice with the same names is free: that policy is only on the role.
    data["source_policy"] = "inline"
    assert operator.post("/accounts/pairs/review", data=data).status_code == 200


@pytest.mark.parametrize(
    ("role_name", "spelling"),
    [
        ("from-staging-inline", str),
        # Inline policy names are unique per role regardless of case, as the run checks them
        # (app.accounts.pair.inline_clash): the form refused only the exact spelling before.
        ("from-staging-inline-case", str.upper),
    ],
)
def test_an_inline_policy_name_taken_on_a_role_is_refused_beside_the_field(
    app_hub: tuple[Any, AccountHub],
    operator: TestClient,
    members: list[str],
    role_name: str,
    spelling: Any,
):
    hub = app_hub[1]
    held = spelling(f"AssumeRole-{members[2]}-{role_name}")
    hub.clients(account(hub, members[1]), "t").client("iam").put_role_policy(
        RoleName="staging-deploy", PolicyName=held, PolicyDocument=DENY_ALL
    )
    data = form_for(members, role_name=role_name, csrf_token=csrf_token_for(operator))
    response = operator.post("/accounts/pairs/review", data=data)
    assert response.status_code == 422
    error = soup(response).select_one("#error-source_role").get_text()
    assert f"staging-deploy already has an inline policy {held}." in error
    # A customer managed policy of that name is free: the inline one is only on the role.
    data["source_policy"] = "managed"
    assert operator.post("/accounts/pairs/review", data=data).status_code == 200


def test_a_role_name_taken_in_account_b_is_refused_beside_the_field(
    operator: TestClient, members: list[str]
):
    data = form_for(members, role_name="ReadOnlyAuditor", csrf_token=csrf_token_for(operator))
    response = operator.post("/accounts/pairs", data=data)
    assert response.status_code == 422
    assert (
        "already has a role ReadOnlyAuditor"
        in soup(response).select_one("#error-role_name").get_text()
    )


def test_form_review_apply_and_done_without_javascript(
    app_hub: tuple[Any, AccountHub], operator: TestClient, members: list[str], org: Services
):
    form = soup(operator.get("/accounts/pairs/new"))
    assert len(form.select("#field-source_account option")) == 5
    data = form_for(members, csrf_token=csrf_token_for(operator))
    review = operator.post("/accounts/pairs/review", data=data)
    assert review.status_code == 200
    page = soup(review)
    assert f"arn:aws:iam::{members[1]}:role/staging-deploy" in page.select_one("#pair-trust").text
    assert f"arn:aws:iam::{members[2]}:role/from-staging-web" in page.select_one("#pair-allow").text
    hidden = {i["name"]: i["value"] for i in page.select("form[action='/accounts/pairs'] input")}
    applied = operator.post("/accounts/pairs", data=hidden, follow_redirects=False)
    assert applied.status_code == 303
    operation = applied.headers["location"]
    assert operation.startswith("/operations/")
    operation_id = operation.rsplit("/", 1)[-1]
    assert org.runs.wait(operation_id, 60)
    progress_page = soup(operator.get(operation))
    link = progress_page.select_one(f"a[href='/accounts/pairs/{operation_id}']")
    assert link is not None and link.get_text() == "How to use the new role"
    done = soup(operator.get(f"/accounts/pairs/{operation_id}"))
    command = done.select_one("#pair-command").get_text()
    assert f"--role-arn arn:aws:iam::{members[2]}:role/from-staging-web" in command
    assert "--external-id web-4411" in command
    assert "external_id = web-4411" in done.select_one("#pair-profile").get_text()
    hub = app_hub[1]
    assert hub.iam(account(hub, members[2]), "t").get_role("from-staging-web")


def test_a_run_refused_under_the_name_lock_says_why_on_its_pages(
    app_hub: tuple[Any, AccountHub], operator: TestClient, members: list[str], org: Services
):
    """A name taken between the form's check and the run (another process, someone in the
    console) is refused by the run under the name's lock, before any change: its progress
    and done pages give that reason, not "a call failed"."""
    hub = app_hub[1]
    staging, prod = account(hub, members[1]), account(hub, members[2])
    source = hub.iam(staging, "t").get_role("staging-deploy")
    pair = Pair(staging, source.arn, prod, "taken-before-run", EXTERNAL_ID, external_id="x-2")
    hub.clients(prod, "someone").client("iam").create_role(
        RoleName="taken-before-run", AssumeRolePolicyDocument=json.dumps(TRUST)
    )
    ctx = AuditContext(actor="olivia")
    plan = pair_plan(hub, "olivia", pair, "us-east-1")
    engine = Engine(org)
    engine.record_start(ctx, plan)
    assert not run_pair(engine, ctx, pair, plan, hub, "olivia").ok
    assert org.settler.wait_idle(30)  # the finish record is written
    rows = soup(operator.get(f"/operations/{ctx.operation_id}")).select("table.operation-steps tr")
    refused = next(r for r in rows if "Refused before its call" in r.get_text())
    assert "A role named taken-before-run already exists" in refused.get_text()
    assert "no AWS change was made" in refused.get_text()
    done = soup(operator.get(f"/accounts/pairs/{ctx.operation_id}"))
    summary = done.select_one(".outcome-summary")
    assert summary is not None
    text = " ".join(summary.get_text().split())
    assert "Not made. A role named taken-before-run already exists" in text
    assert "Nothing was changed in either account." in text
    assert "A call failed" not in text


def test_form_review_apply_and_done_with_a_managed_policy_without_javascript(
    app_hub: tuple[Any, AccountHub], operator: TestClient, members: list[str], org: Services
):
    form = soup(operator.get("/accounts/pairs/new"))
    choices = {i["value"]: i for i in form.select("input[name=source_policy]")}
    assert set(choices) == {"inline", "managed"} and choices["inline"].has_attr("checked")
    legend = form.select_one("#field-source_policy legend").get_text(strip=True)
    assert legend == "Permission in account A"
    policy_arn = f"arn:aws:iam::{members[1]}:policy/AssumeRole-{members[2]}-from-staging-mp"
    data = form_for(
        members,
        role_name="from-staging-mp",
        source_policy="managed",
        csrf_token=csrf_token_for(operator),
    )
    review = operator.post("/accounts/pairs/review", data=data)
    assert review.status_code == 200
    page = soup(review)
    assert page.select_one("#pair-policy-arn").get_text() == policy_arn
    assert f"arn:aws:iam::{members[2]}:role/from-staging-mp" in page.select_one("#pair-allow").text
    steps = [li.get_text() for li in page.select("#pair-steps li")]
    assert any(s.startswith("Create customer managed policy AssumeRole-") for s in steps)
    assert steps[-1].endswith(f"to assume it: attach {policy_arn}")
    hidden = {i["name"]: i["value"] for i in page.select("form[action='/accounts/pairs'] input")}
    assert hidden["source_policy"] == "managed"
    applied = operator.post("/accounts/pairs", data=hidden, follow_redirects=False)
    assert applied.status_code == 303
    operation_id = applied.headers["location"].rsplit("/", 1)[-1]
    assert org.runs.wait(operation_id, 60)
    done = soup(operator.get(f"/accounts/pairs/{operation_id}"))
    assert "customer managed policy" in done.select_one("#pair-permission").get_text()
    assert policy_arn in done.select_one("#pair-permission").get_text()
    assert "--role-arn" in done.select_one("#pair-command").get_text()
    hub = app_hub[1]
    staging = hub.iam(account(hub, members[1]), "t")
    assert policy_arn in {p.arn for p in staging.list_attached_role_policies("staging-deploy")}
    assert f"AssumeRole-{members[2]}-from-staging-mp" not in staging.list_role_policy_names(
        "staging-deploy"
    )


def test_a_viewer_may_look_but_not_make_a_pair(app_hub: tuple[Any, AccountHub], members: list[str]):
    with signed_in(app_hub[0], "vera", "viewer") as viewer:
        assert viewer.get("/accounts").status_code == 200
        data = form_for(members, csrf_token=csrf_token_for(viewer))
        assert viewer.post("/accounts/pairs", data=data).status_code == 403


def test_the_done_page_of_something_else_is_not_found(operator: TestClient):
    assert operator.get("/accounts/pairs/not-an-id").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert operator.get(f"/accounts/pairs/{missing}").status_code == 404


def test_the_new_role_shows_in_account_bs_roles_list_at_once(
    operator: TestClient, members: list[str], org: Services
):
    """The pair runs through the hub's audited path, which tells only the hub's lists: B's
    roles list, already held, must show the new role without a refresh."""
    b_roles = f"/accounts/{members[2]}/roles"
    before = soup(operator.get(b_roles, params={"q": "from-staging-list"}))
    assert before.select("table.roles tbody a") == []  # held, without the role
    data = form_for(members, role_name="from-staging-list", csrf_token=csrf_token_for(operator))
    page = soup(operator.post("/accounts/pairs/review", data=data))
    hidden = {i["name"]: i["value"] for i in page.select("form[action='/accounts/pairs'] input")}
    applied = operator.post("/accounts/pairs", data=hidden, follow_redirects=False)
    assert applied.status_code == 303
    assert org.runs.wait(applied.headers["location"].rsplit("/", 1)[-1], 60)
    after = soup(operator.get(b_roles, params={"q": "from-staging-list"}))
    names = [a.get_text(strip=True) for a in after.select("table.roles tbody a")]
    assert "from-staging-list" in names
