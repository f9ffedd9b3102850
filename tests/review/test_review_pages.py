"""The access review pages over HTTP: scan progress, filters, sorting, bad input, recording a
review (stored, audited, due date), the export, and RoleDesk's own changes showing at once."""

from __future__ import annotations

import csv
import io
import json
import threading

from bs4 import BeautifulSoup
from sqlalchemy import select

from app.models import AuditEvent
from app.services import Services
from tests.conftest import csrf_token_for


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def scanned_page(client, seeded: Services, url: str = "/access-review"):
    client.get("/access-review")
    seeded.access_scan.wait(60)
    return client.get(url)


def row_names(page) -> list[str]:
    return [a.text for a in soup(page).select("table.review td.role-name > a")]


def test_first_visit_shows_progress_then_the_roles(client, seeded: Services) -> None:
    first = client.get("/access-review")
    assert first.status_code == 200
    if seeded.access_scan.progress.running:
        html = soup(first)
        assert html.select_one('#scan-progress[hx-get="/access-review/progress"]') is not None
        assert 'http-equiv="refresh"' not in first.text  # no timed reload (WCAG 2.2.1)
        check = html.select_one("#scan-progress noscript a")
        assert check.text == "Check progress" and check["href"] == "/access-review?wait=1"
    seeded.access_scan.wait(60)
    done = client.get("/access-review/progress", headers={"HX-Request": "true"})
    assert done.headers.get("HX-Refresh") == "true"
    page = client.get("/access-review")
    names = row_names(page)
    assert "web-app-ec2" in names
    assert len(names) == len(list(seeded.iam.list_roles()))
    assert "Account scanned" in page.text


def test_check_progress_waits_for_the_scan_to_move_on(client, seeded: Services) -> None:
    """Without JavaScript, "Check progress" holds its request until the scan's next phase
    (or its end), so one click shows news."""
    reading, release = threading.Event(), threading.Event()
    events = seeded.clients.client("iam").meta.events

    def hold(**_kwargs):
        reading.set()
        release.wait(20)  # AWS is slow to list the account's roles

    events.register_first("before-call.iam.GetAccountAuthorizationDetails", hold)
    try:
        first = soup(client.get("/access-review?kind=admin"))
        assert reading.wait(20)
        label = first.select_one("#scan-progress label").text
        assert label.startswith("Reading roles"), label
        check = first.select_one("#scan-progress noscript a")
        assert check["href"] == "/access-review?kind=admin&wait=1"  # the filters kept
        timer = threading.Timer(0.5, release.set)
        timer.start()
        checked = soup(client.get(check["href"]))
        timer.join()
    finally:
        release.set()
        events.unregister("before-call.iam.GetAccountAuthorizationDetails", hold)
    progress = checked.select_one("#scan-progress label")
    assert progress is None or not progress.text.startswith("Reading roles"), progress
    seeded.access_scan.wait(60)


def test_filter_and_sort(client, seeded: Services) -> None:
    page = scanned_page(client, seeded, "/access-review?kind=admin")
    names = row_names(page)
    assert names, "the seed has an administrator role"
    result = seeded.access_scan.result
    assert result is not None
    for name in names:
        assert any(f.kind == "admin" for f in result.roles[name.lower()].checked)
    # The sandbox seed shows each of the findings a new user should see.
    assert row_names(client.get("/access-review?kind=unused")) == [
        "legacy-build-server",
        "old-data-migration",
    ]
    assert "deploy-bot-admin" in names
    assert "vendor-monitoring" in row_names(client.get("/access-review?kind=trust"))
    by_name_desc = row_names(client.get("/access-review?sort=name&order=desc&per_page=100"))
    assert by_name_desc == sorted(by_name_desc, key=str.lower, reverse=True)


def test_the_counts_line_names_each_finding_and_review_state_once(client, seeded: Services) -> None:
    """ "Review overdue" is a finding kind and a review state of the same roles; the line of
    counts above the table listed it twice (one link per filter)."""
    page = soup(scanned_page(client, seeded))
    labels = [a.text.rsplit(":", 1)[0] for a in page.select("ul.finding-counts a")]
    assert len(labels) == len(set(labels)), labels
    assert {"Unused", "Administrator access", "Never reviewed", "Review overdue"} <= set(labels)
    overdue = page.select_one("ul.finding-counts a[href*='overdue']")
    assert overdue["href"] == "/access-review?review=overdue"
    # A role with no recorded use says so as the roles list and the role page do.
    assert "None in the last 400 days" in page.select_one("table.review").get_text()


def test_bad_query_values_are_refused_beside_the_field(client, seeded: Services) -> None:
    scanned_page(client, seeded)
    for query, field in (
        ("days=0", "days"),
        ("days=%D9%A3", "days"),  # an Arabic-Indic digit
        ("kind=nonsense", "kind"),
        ("review=later", "review"),
        ("sort=__class__", "sort"),
        ("q=" + "a" * 65, "q"),
    ):
        response = client.get(f"/access-review?{query}")
        assert response.status_code == 422, query
        assert soup(response).select_one(f'[name="{field}"][aria-invalid="true"]') is not None or (
            field == "sort"
        ), query
    assert client.get("/access-review?page=abc&per_page=7").status_code == 200


def test_record_a_review_is_stored_audited_and_sets_the_due_date(client, seeded: Services) -> None:
    scanned_page(client, seeded)
    token = csrf_token_for(client)
    refused = client.post(
        "/access-review/roles/web-app-ec2",
        data={"csrf_token": token, "decision": "maybe", "note": "x"},
    )
    assert refused.status_code == 422
    assert soup(refused).select_one("#decision-error").text.strip()
    assert seeded.reviews.history("web-app-ec2") == []
    response = client.post(
        "/access-review/roles/web-app-ec2",
        data={"csrf_token": token, "decision": "keep", "note": '=HYPERLINK("x")'},
        follow_redirects=False,
    )
    assert response.status_code == 303
    [review] = seeded.reviews.history("web-app-ec2")
    assert (review.decision, review.reviewer) == ("keep", "admin")
    assert (review.due_at - review.reviewed_at).days == 90
    with seeded.db.session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "roledesk:RecordAccessReview")
        ).one()
    assert event.actor == "admin"
    assert event.target is not None and event.target.endswith(":role/web-app-ec2")
    assert event.params is not None and event.params["decision"] == "keep"
    page = client.get("/access-review/roles/web-app-ec2")
    assert "Reviewed: keep" in page.text
    listed = client.get("/access-review?review=current")
    assert row_names(listed) == ["web-app-ec2"]


def test_a_viewer_sees_the_review_but_cannot_record(client_as, seeded: Services) -> None:
    viewer = client_as("viewer")
    page = scanned_page(viewer, seeded)
    assert page.status_code == 200
    assert soup(page).select_one('form[action="/roles/bulk-delete/review"]') is None
    token = csrf_token_for(viewer)
    refused = viewer.post(
        "/access-review/roles/web-app-ec2", data={"csrf_token": token, "decision": "keep"}
    )
    assert refused.status_code == 403
    assert seeded.reviews.history("web-app-ec2") == []


def test_export_csv_and_json_lines(client, seeded: Services) -> None:
    scanned_page(client, seeded)
    token = csrf_token_for(client)
    client.post(
        "/access-review/roles/web-app-ec2",
        data={"csrf_token": token, "decision": "change", "note": "=cmd|' /C calc'!A0"},
    )
    lines = client.get("/access-review/export?format=jsonl&q=web-app")
    assert lines.status_code == 200
    rows = [json.loads(line) for line in lines.text.splitlines()]
    assert [r["role_name"] for r in rows] == ["web-app-ec2"]
    assert rows[0]["decision"] == "change"
    assert rows[0]["note"] == "=cmd|' /C calc'!A0"  # JSON Lines keeps the value
    assert rows[0]["reviewer"] == "admin"
    table = client.get("/access-review/export?format=csv&q=web-app")
    parsed = list(csv.DictReader(io.StringIO(table.text)))
    assert parsed[0]["note"] == "'=cmd|' /C calc'!A0"  # formula-safe
    assert client.get("/access-review/export?format=xlsx").status_code == 422


def test_roledesk_changes_show_at_once(client, seeded: Services) -> None:
    scanned_page(client, seeded)
    token = csrf_token_for(client)
    admin = client.get("/access-review?kind=admin")
    assert "orders-lambda" not in row_names(admin)
    from app.audit.audited import AuditContext, Change

    seeded.audited.call(
        AuditContext(actor="test"),
        Change(f"arn:aws:iam::{seeded.identity.account}:role/orders-lambda"),
        seeded.iam.attach_role_policy,
        role_name="orders-lambda",
        policy_arn="arn:aws:iam::aws:policy/AdministratorAccess",
    )
    assert "orders-lambda" in row_names(client.get("/access-review?kind=admin"))
    assert token


def test_unknown_role_review_is_a_404_in_plain_words(client, seeded: Services) -> None:
    scanned_page(client, seeded)
    assert client.get("/access-review/roles/no-such-role").status_code == 404
    assert client.get("/access-review/roles/%00bad").status_code == 404


def test_findings_explanations_have_an_anchor_per_kind(client) -> None:
    from app.review.findings import KINDS

    page = soup(client.get("/access-review/findings"))
    for kind, _ in KINDS:
        assert page.select_one(f"#{kind}") is not None
