"""The create-role wizard through the ASGI app: every step with and without htmx, plain-form
journeys per trusted-entity type, 422s with errors beside the field and no AWS call."""

from __future__ import annotations

import json
import time

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import func, select

from app.aws.errors import NotFound
from app.models import AuditEvent
from app.wizard.catalog import SSM_CORE
from tests.conftest import csrf_token_for

S3_READ = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"


def soup(response):
    return BeautifulSoup(response.text, "html.parser")


def audit_count(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def start(client, trust: dict[str, str] | None = None) -> str:
    """A draft as the wizard makes one: a new role's step 1 saved ("Update preview"); returns
    its id. A draft exists only once step 1 is saved (issue 13)."""
    values = trust or {"entity_type": "service", "service": "lambda.amazonaws.com"}
    response = client.post(
        "/create-role/new/trust",
        data={"csrf_token": csrf_token_for(client), **values, "nav": "preview"},
        follow_redirects=False,
    )
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


def create(client, draft, values, *, wait=True):
    """Press Create; with `wait`, then wait for the run to end as a person without JavaScript
    does on the progress page (app/wizard/routes.py CREATE_WAIT_SECONDS: a create that takes
    longer than a moment answers with the progress page). Returns the Create response."""
    response = post(client, f"/create-role/{draft}/create", values, follow_redirects=False)
    if wait and response.status_code == 303 and response.headers["location"].endswith("/done"):
        finish_create(client, response.headers["location"])
    return response


def finish_create(client, done_url: str, *, at_most: float = 120.0):
    """The done page once the create has ended: "Check progress" (each check waits for news
    on the server) until the page no longer shows the run's progress."""
    deadline = time.monotonic() + at_most
    while True:
        page = client.get(f"{done_url}?wait=1")
        if 'id="create-progress"' not in page.text:
            return page
        assert time.monotonic() < deadline, "the create did not end"


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
    assert review.select_one("#review-cli-commands") is None  # no name yet: no commands
    post(client, f"/create-role/{draft}/review", {**details("wizard-ec2"), "nav": "save"})
    review = soup(client.get(f"/create-role/{draft}/review"))
    before_create = review.select_one("#review-cli-commands").text  # shown before Create
    assert "aws iam create-role --role-name wizard-ec2" in before_create
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


def test_each_step_full_page_and_htmx_fragment(client):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    for step, marker in (
        ("trust", "#trust-preview"),
        ("permissions", "#policy-rows"),
        ("review", "#field-name"),
    ):
        full = client.get(f"/create-role/{draft}/{step}")
        assert full.status_code == 200 and "<html" in full.text
        assert full.headers["vary"] == "HX-Request"
        assert soup(full).select_one(marker) is not None
        assert soup(full).select_one('nav.wizard-steps li[aria-current="step"]') is not None
        partial = client.get(f"/create-role/{draft}/{step}", headers={"HX-Request": "true"})
        assert partial.status_code == 200 and "<html" not in partial.text
        assert soup(partial).select_one(marker) is not None


def test_live_preview_fragment_and_no_js_update_preview(client):
    draft = start(client)
    values = {
        "entity_type": "account",
        "account_choice": "other",
        "account_id": "444455556666",
        "require_mfa": "1",
    }
    response = post(
        client, f"/create-role/{draft}/trust/preview", values, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "<html" not in response.text
    preview = json.loads(soup(response).select_one("#trust-json").text)
    assert preview["Statement"][0]["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    # Without JavaScript: "Update preview" re-renders the step with the same preview.
    page = fill_trust(client, draft, values, nav="preview")
    assert page.status_code == 200 and "<html" in page.text
    assert json.loads(soup(page).select_one("#trust-json").text) == preview
    # and the values are kept in the draft
    again = soup(client.get(f"/create-role/{draft}/trust"))
    assert again.select_one("#field-account_id")["value"] == "444455556666"


def test_invalid_trust_input_is_a_422_beside_the_field_without_aws_calls(client, seeded):
    before = audit_count(seeded)
    draft = start(client)
    response = fill_trust(
        client, draft, {"entity_type": "account", "account_choice": "other", "account_id": "123"}
    )
    assert response.status_code == 422
    page = soup(response)
    assert "12 digits" in page.select_one("#error-account_id").text
    assert page.select_one("#field-account_id")["aria-invalid"] == "true"
    custom = fill_trust(client, draft, {"entity_type": "custom", "custom_policy": '{"Version": '})
    assert custom.status_code == 422
    assert "Line 1, column 13" in soup(custom).select_one("#error-custom_policy").text
    assert audit_count(seeded) == before


def _to_review(client, draft, trust=None):
    fill_trust(
        client, draft, trust or {"entity_type": "service", "service": "lambda.amazonaws.com"}
    )
    post(client, f"/create-role/{draft}/permissions", {"nav": "next"})


@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        (details("web-app-EC2"), "name", "already exists"),  # case-insensitive, moto allows it
        (details("x" * 65), "name", "at most 64"),
        (details("bad name"), "name", "may contain only"),
        (details("ok", path="team"), "path", "start and end"),
        (details("ok", max_session_hours="13"), "max_session_hours", "1 to 12"),
        (details("ok", description="bell\x07"), "description", "control characters"),
        (details("ok", tag_key="aws:owner", tag_value="me"), "tags", "Correct the tags"),
    ],
)
def test_invalid_details_are_refused_before_any_aws_change(client, seeded, values, field, text):
    draft = start(client)
    _to_review(client, draft)
    before = audit_count(seeded)
    response = create(client, draft, values)
    assert response.status_code == 422
    assert text in soup(response).select_one(f"#error-{field}").text
    assert audit_count(seeded) == before  # no AWS change was attempted
    assert not any(
        r.name.lower() == values["name"].lower() and r.name != "web-app-ec2"
        for r in seeded.iam.list_roles()
    )


def test_quota_of_managed_policies_enforced_on_next(client):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    page = soup(client.get(f"/create-role/{draft}/permissions?q=AmazonS3"))
    arns = [b["value"] for b in page.select('#policy-rows button[name="add"]')]
    page2 = soup(client.get(f"/create-role/{draft}/permissions?q=AmazonEC2"))
    arns += [b["value"] for b in page2.select('#policy-rows button[name="add"]')]
    for arn in arns[:11]:
        add_policy(client, draft, arn)
    response = post(client, f"/create-role/{draft}/permissions", {"nav": "next"})
    assert response.status_code == 422
    assert "allows 10" in soup(response).select_one("#error-policies").text


def test_search_filter_paging_and_selection_survives(client):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    add_policy(client, draft, S3_READ)
    page = soup(client.get(f"/create-role/{draft}/permissions?q=readonly&page=2"))
    assert "Page 2 of" in page.select_one(".pager").text
    names = [a.text for a in page.select("#policy-rows td:first-child a")]
    assert names and all("readonly" in n.lower() for n in names)
    chosen = [li.code.text for li in page.select("#chosen li")]
    assert chosen == ["AmazonS3ReadOnlyAccess"]
    jobs = soup(
        client.get(f"/create-role/{draft}/permissions?kind=job", headers={"HX-Request": "true"})
    )
    job_names = [a.text for a in jobs.select("#policy-rows td:first-child a")]
    assert "ViewOnlyAccess" in job_names and "AmazonS3ReadOnlyAccess" not in job_names
    customer = soup(client.get(f"/create-role/{draft}/permissions?kind=customer"))
    assert len(customer.select("#policy-rows tr")) == 3  # the sandbox's customer policies


def test_view_policy_document_without_leaving_the_step(client):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    add_policy(client, draft, S3_READ)
    url = f"/create-role/{draft}/permissions/document?arn={S3_READ}"
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and '"s3:Get*"' in soup(fragment).text
    plain = client.get(url, follow_redirects=True)
    page = soup(plain)
    assert '"s3:Get*"' in page.select_one("#policy-document").text
    assert [li.code.text for li in page.select("#chosen li")] == ["AmazonS3ReadOnlyAccess"]


def test_boundary_and_inline_policy_reach_aws(client, seeded):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    boundary = "arn:aws:iam::aws:policy/PowerUserAccess"
    post(client, f"/create-role/{draft}/permissions", {"boundary": boundary})
    inline = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}],
    }
    response = post(
        client,
        f"/create-role/{draft}/permissions",
        {"nav": "next", "inline_name": "Pass", "inline_policy": json.dumps(inline)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    review = soup(client.get(f"/create-role/{draft}/review"))
    gated = review.select("#review-findings li.finding-security_warning")
    assert [" ".join(li.strong.text.split()) for li in gated] == ["Security warning"]
    assert "iam:PassRole on every role" in gated[0].text and "Pass" in gated[0].text
    box = gated[0].select_one("input[name=acknowledge]")
    assert "PASSROLE_ANY_ROLE in Pass" in gated[0].select_one("label").text
    values = details("bounded", description="With a boundary", max_session_hours="4")
    # Create is refused (server-side) until the security warning is acknowledged.
    refused = create(client, draft, values)
    assert refused.status_code == 422
    assert (
        "Acknowledge each security warning" in soup(refused).select_one("#error-acknowledge").text
    )
    with pytest.raises(NotFound):
        seeded.iam.get_role("bounded")
    assert create(client, draft, {**values, "acknowledge": box["value"]}).status_code == 303
    role = seeded.iam.get_role("bounded")
    assert role.permissions_boundary_arn == boundary and role.max_session_duration == 4 * 3600
    assert seeded.iam.get_role_policy("bounded", "Pass").document == inline
    assert seeded.iam.list_instance_profiles_for_role("bounded") == []  # not an EC2 role
    # The CreateRole audit event keeps the findings and the acknowledgement.
    with seeded.db.session() as session:
        intent = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "iam:CreateRole", AuditEvent.target == role.arn
            )
        ).first()
        record = intent.params["policy_review"]
    assert record["acknowledged"] == [box["value"]]
    assert "PASSROLE_ANY_ROLE" in [f["code"] for f in record["findings"]]


def test_invalid_inline_policy_422_with_line_and_column(client):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    response = post(
        client,
        f"/create-role/{draft}/permissions",
        {
            "nav": "next",
            "inline_name": "P",
            "inline_policy": '{\n "Version": "2012-10-17",\n "Statement": {"Effect": '
            '"Allow", "Principal": "*", "Action": "s3:*", '
            '"Resource": "*"}}',
        },
    )
    assert response.status_code == 422
    error = soup(response).select_one("#error-inline_policy").text
    assert "Line 3" in error and "Principal" in error


def test_user_text_is_escaped_everywhere_it_is_echoed(client):
    payload = '</textarea><script>alert("x")</script>'
    draft = start(client)
    response = fill_trust(client, draft, {"entity_type": "custom", "custom_policy": payload})
    assert response.status_code == 422 and "<script>alert" not in response.text
    post(
        client,
        f"/create-role/{draft}/permissions",
        {"inline_name": '"><script>x</script>', "inline_policy": payload},
    )
    page = client.get(f"/create-role/{draft}/permissions")
    assert "<script>x" not in page.text and "<script>alert" not in page.text
    post(
        client,
        f"/create-role/{draft}/review",
        {"name": "<b>bold</b>", "tag_key": "<i>k</i>", "tag_value": "v", "nav": "save"},
    )
    review = client.get(f"/create-role/{draft}/review")
    assert "<b>bold</b>" not in review.text and "<i>k</i>" not in review.text


def test_htmx_add_and_remove_swap_the_step_without_a_redirect(client):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    response = post(
        client,
        f"/create-role/{draft}/permissions",
        {"add": S3_READ, "q": "S3Read", "inline_policy": "", "inline_name": ""},
        headers={"HX-Request": "true"},
        follow_redirects=False,
    )
    assert response.status_code == 200 and "<html" not in response.text
    body = soup(response)
    assert [li.code.text for li in body.select("#chosen li")] == ["AmazonS3ReadOnlyAccess"]
    assert body.select_one("#policy-search") is None  # only the form's body is swapped
    assert body.select_one('input[name="q"]')["value"] == "S3Read"  # search kept
    removed = post(
        client,
        f"/create-role/{draft}/permissions",
        {"remove": S3_READ},
        headers={"HX-Request": "true"},
        follow_redirects=False,
    )
    assert soup(removed).select("#chosen li") == []


def test_role_name_over_64_characters_is_refused_never_cut(client, seeded):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    review = soup(client.get(f"/create-role/{draft}/review"))
    assert review.select_one("#field-name").get("maxlength") is None
    name = "n" * 65
    refused = create(client, draft, details(name))
    assert refused.status_code == 422
    assert "at most 64 characters (65 now)" in soup(refused).select_one("#error-name").text
    with pytest.raises(NotFound):
        seeded.iam.get_role(name[:64])
