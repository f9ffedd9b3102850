"""The wizard's issue-13 behaviour through the ASGI app: no draft before step 1 is saved,
Create role opening step 1, Discard, and each htmx submit answered with the next step in one
response (plain forms keep post/redirect/get)."""

from __future__ import annotations

from bs4 import BeautifulSoup

from app.wizard.service import wizard_for
from tests.web.test_wizard_flow import post, start

STEP = {"HX-Request": "true", "HX-Target": "wizard-step"}
LAMBDA = {"entity_type": "service", "service_name": "Lambda"}


def soup(response):
    return BeautifulSoup(response.text, "html.parser")


def drafts_of(web_app, seeded, actor="admin"):
    return wizard_for(web_app.state, seeded).drafts.resumable(actor)


def test_create_role_opens_step_one_and_makes_no_draft(client, web_app, seeded):
    page = soup(client.get("/create-role"))
    assert page.select_one("h1").text == "Select trusted entity"
    assert page.select_one("form.trust-form")["action"] == "/create-role/new/trust"
    # Searching and choosing a service without JavaScript, or an invalid Next, saves nothing.
    for nav in ("search_services", "choose_service"):
        response = post(client, "/create-role/new/trust", {**LAMBDA, "nav": nav})
        assert response.status_code == 200
    refused = post(client, "/create-role/new/trust", {"entity_type": "service", "nav": "next"})
    assert refused.status_code == 422
    assert "Choose a service above" in soup(refused).select_one("#error-service").text
    assert drafts_of(web_app, seeded) == []


def test_show_use_cases_without_javascript(client):
    response = post(
        client,
        "/create-role/new/trust",
        {"entity_type": "service", "service_name": "EC2", "nav": "choose_service"},
    )
    cases = soup(response).select("input[name=use_case]")
    assert [c["value"] for c in cases][:3] == [
        "EC2|EC2",
        "EC2|EC2 Role for AWS Systems Manager",
        "EC2|EC2 Spot Fleet Role",
    ]
    found = post(
        client, "/create-role/new/trust", {"service_query": "pod", "nav": "search_services"}
    )
    names = [i["value"] for i in soup(found).select("#service-list input[name=service_name]")]
    assert names == ["EKS", "other"]


def test_next_without_javascript_redirects_and_with_htmx_answers_with_step_two(client):
    plain = post(
        client, "/create-role/new/trust", {**LAMBDA, "nav": "next"}, follow_redirects=False
    )
    assert plain.status_code == 303 and plain.headers["location"].endswith("/permissions")
    htmx = post(client, "/create-role/new/trust", {**LAMBDA, "nav": "next"}, headers=STEP)
    assert htmx.status_code == 200
    pushed = htmx.headers["HX-Push-Url"]
    assert pushed.startswith("/create-role/") and pushed.endswith("/permissions")
    fragment = soup(htmx)
    assert fragment.select_one("h1").text == "Add permissions"
    assert fragment.select_one("html") is None  # the step alone, for #wizard-step
    draft = pushed.split("/")[2]
    review = post(client, f"/create-role/{draft}/permissions", {"nav": "next"}, headers=STEP)
    assert review.headers["HX-Push-Url"] == f"/create-role/{draft}/review"
    assert soup(review).select_one("h1").text == "Name, review, and create"
    back = post(
        client, f"/create-role/{draft}/review", {"nav": "previous", "name": "x"}, headers=STEP
    )
    assert back.headers["HX-Push-Url"] == f"/create-role/{draft}/permissions"


def test_discard_deletes_only_with_its_button_and_only_unfinished_drafts(client, web_app, seeded):
    draft = start(client)
    bare = post(client, f"/create-role/{draft}/discard", {}, follow_redirects=False)
    assert bare.status_code == 422
    assert [d.id for d in drafts_of(web_app, seeded)] == [draft]
    listing = soup(client.get("/create-role"))
    row = listing.select_one(f"form[action='/create-role/{draft}/discard']")
    assert row.select_one("button")["value"] == "discard"
    assert "AWS service: lambda.amazonaws.com" in listing.select_one("table.drafts").text
    done = post(
        client, f"/create-role/{draft}/discard", {"confirm": "discard"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/create-role?discarded=1"
    assert drafts_of(web_app, seeded) == []
    assert client.get(f"/create-role/{draft}/trust").status_code == 404
    assert "The draft was discarded." in client.get("/create-role?discarded=1").text
