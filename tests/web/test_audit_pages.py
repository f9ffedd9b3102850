"""The audit history through the ASGI app: filters, keyset pages, htmx fragments, event and
operation pages, export of the filtered view and the chain status."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import text

from app.audit.log import NewEntry
from app.main import create_app
from tests.audit.helpers import change
from tests.conftest import signed_in

ACCOUNT = "123456789012"
HX = {"HX-Request": "true"}
SIGN_IN_EVENTS = 2  # the auditor added, the auditor signed in


def soup(response):
    return BeautifulSoup(response.text, "html.parser")


def seqs(page):
    return [int(a.text) for a in page.select("table.audit-events tbody td:first-child a")]


@pytest.fixture
def app_client(services):
    # Signed in first: adding the user and signing in are audited (SIGN_IN_EVENTS), so the
    # entries written below stay the newest.
    with signed_in(create_app(services), "auditor") as client:
        log = services.audit_log
        for i in range(120):
            log.append(
                NewEntry(
                    kind="record",
                    action="roledesk:SignIn",
                    actor=f"user{i % 4}",
                    outcome="succeeded",
                )
            )
        arn = f"arn:aws:iam::{ACCOUNT}:role/web"
        marks = {
            "create": change(
                log,
                action="iam:CreateRole",
                target=arn,
                op="op-web",
                params={"name": "web"},
                aws_request_id="req-create-1",
            ),
            "attach": change(
                log,
                action="iam:AttachRolePolicy",
                target=arn,
                op="op-web",
                outcome="failed",
                error_code="NoSuchEntity",
                error_message="Policy arn:aws:iam::aws:policy/Nope does not exist",
            ),
            "inline": change(
                log,
                action="iam:PutRolePolicy",
                target="web",
                actor="bob",
                op="op-old",
                before={"Statement": [{"Action": "s3:GetObject"}]},
                after={"Statement": [{"Action": "s3:PutObject"}]},
            ),
            "pending": change(
                log,
                action="iam:DeleteRole",
                target="other",
                actor="carol",
                outcome="pending",
                op="op-del",
            ),
        }
        client.marks = marks
        yield client


def test_full_page_and_htmx_fragment_with_chain_status(app_client):
    full = app_client.get("/audit")
    assert full.status_code == 200 and full.headers["vary"] == "HX-Request"
    page = soup(full)
    assert page.select_one('nav a[href="/audit"]').text == "Audit history"
    status = page.select_one("#chain-status").text
    assert f"Chain verified up to sequence {127 + SIGN_IN_EVENTS}" in " ".join(status.split())
    rows = seqs(page)
    assert rows[0] == app_client.marks["pending"] and rows == sorted(rows, reverse=True)
    assert len(rows) == 50
    fragment = app_client.get("/audit", headers=HX)
    assert "<html" not in fragment.text and "audit-events" in fragment.text
    assert seqs(soup(fragment)) == rows


def test_keyset_pages_walk_every_event_once_and_back(app_client):
    seen, url = [], "/audit"
    while url:
        page = soup(app_client.get(url))
        seen += seqs(page)
        older = page.find("a", string=lambda s: s and "Older events" in s)
        url = older["href"] if older else None
    # 120 records + 4 events (intent seqs), each once, newest first
    assert len(seen) == 124 + SIGN_IN_EVENTS == len(set(seen)) and seen == sorted(
        seen, reverse=True
    )
    second = soup(app_client.get(f"/audit?before={seen[49]}"))
    newer = second.find("a", string=lambda s: s and "Newer events" in s)
    assert seqs(soup(app_client.get(newer["href"]))) == seen[:50]
    assert "OFFSET" not in newer["href"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=bob", ["inline"]),
        ("action=iam:AttachRolePolicy", ["attach"]),
        ("outcome=failed", ["attach"]),
        ("outcome=pending", ["pending"]),
        ("target=web", ["inline", "attach", "create"]),  # name also matches the role ARN
        (f"target=arn:aws:iam::{ACCOUNT}:role/web", ["attach", "create"]),
        ("q=does+not+exist", ["attach"]),  # the outcome's error message
        ("q=req-create", ["create"]),  # the AWS request id
        ("actor=alice&outcome=succeeded", ["create"]),
    ],
)
def test_filters(app_client, query, expected):
    marks = app_client.marks
    for headers in ({}, HX):
        response = app_client.get(f"/audit?{query}", headers=headers)
        assert response.status_code == 200
        assert seqs(soup(response)) == [marks[name] for name in expected]


def test_time_range_filter(app_client):
    now = datetime.now(UTC)
    future = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    past = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert seqs(soup(app_client.get(f"/audit?since={future}"))) == []
    assert len(seqs(soup(app_client.get(f"/audit?since={past}&until={future}")))) == 50
    assert seqs(soup(app_client.get(f"/audit?until={past}"))) == []


def test_bad_filters_are_explained_beside_the_field_with_422(app_client):
    for headers in ({}, HX):
        response = app_client.get("/audit?since=yesterday&outcome=maybe", headers=headers)
        assert response.status_code == 422
        page = soup(response)
        assert "2026-11-28T14:30" in page.select_one("#audit-since-error").text
        assert page.select_one("#audit-outcome-error")
    full = soup(app_client.get("/audit?since=yesterday"))
    assert full.select_one("#audit-since")["aria-invalid"] == "true"
    assert full.select_one("#audit-since")["value"] == "yesterday"


def test_operation_expands_into_its_steps(app_client):
    marks = app_client.marks
    fragment = app_client.get("/audit/operations/op-web", headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    steps = soup(fragment).select("ol.operation-steps li")
    assert [s.a.text for s in steps] == [f"#{marks['create']}", f"#{marks['attach']}"]
    assert "NoSuchEntity" in steps[1].text
    full = soup(app_client.get("/audit/operations/op-web"))
    assert full.h1 and "op-web" in full.h1.text and full.select_one("#operation-steps li")
    assert app_client.get("/audit/operations/nope").status_code == 404
    assert app_client.get("/audit/operations/a%20b").status_code == 404


def test_event_detail_shows_request_response_and_diff(app_client):
    marks = app_client.marks
    created = soup(app_client.get(f"/audit/events/{marks['create']}"))
    assert '"name": "web"' in created.select_one("#event-request").text
    assert "req-create-1" in created.select_one("#event-response").text
    operation = created.select_one('a[href^="/audit/operations/"]')
    assert operation["href"] == "/audit/operations/" + operation.get_text()
    failed = soup(app_client.get(f"/audit/events/{marks['attach']}"))
    response = failed.select_one("#event-response").text
    assert "NoSuchEntity" in response and "does not exist" in response
    # the outcome entry's own number leads to the same event
    same = soup(app_client.get(f"/audit/events/{marks['attach'] + 1}"))
    assert same.h1.text == failed.h1.text
    diff = soup(app_client.get(f"/audit/events/{marks['inline']}"))
    assert [s.text.split() for s in diff.select(".diff-del")][-1] == [
        "-",
        '"Action":',
        '"s3:GetObject"',
    ]
    assert [s.text.split() for s in diff.select(".diff-add")][-1] == [
        "+",
        '"Action":',
        '"s3:PutObject"',
    ]
    pending = soup(app_client.get(f"/audit/events/{marks['pending']}"))
    assert "reconciliation" in pending.select_one("#event-response").text
    assert app_client.get("/audit/events/99999").status_code == 404
    assert app_client.get("/audit/events/0").status_code == 404
    not_a_number = app_client.get("/audit/events/abc")
    assert not_a_number.status_code == 404 and "<html" in not_a_number.text


def test_export_of_the_filtered_view(app_client):
    marks = app_client.marks
    response = app_client.get("/audit/export?format=csv&target=web")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["seq"]) for r in rows] == [marks["inline"], marks["attach"], marks["create"]]
    assert rows[1]["outcome"] == "failed" and rows[1]["error_code"] == "NoSuchEntity"
    lines = app_client.get("/audit/export?format=jsonl").text.splitlines()
    assert len(lines) == 124 + SIGN_IN_EVENTS and json.loads(lines[0])["seq"] == marks["pending"]
    assert app_client.get("/audit/export?format=xml").status_code == 422
    page = soup(app_client.get("/audit?actor=bob"))
    link = page.find("a", string="CSV")["href"]
    assert "actor=bob" in link and "format=csv" in link


def test_user_text_is_escaped(services):
    services.audit_log.append(
        NewEntry(
            kind="record",
            action="roledesk:Note",
            actor="<script>alert(1)</script>",
            outcome="succeeded",
            target="<img src=x onerror=alert(1)>",
        )
    )
    with signed_in(create_app(services), "auditor") as client:
        body = client.get("/audit").text + client.get("/audit/events/1").text
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(1)" in body


def test_a_broken_chain_is_shown(services):
    for i in range(3):
        services.audit_log.append(
            NewEntry(kind="record", action="roledesk:Test", actor=f"a{i}", outcome="succeeded")
        )
    from tests.audit.helpers import drop_triggers

    drop_triggers(services.db)
    with services.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    with signed_in(create_app(services), "auditor") as client:
        status = soup(client.get("/audit")).select_one("#chain-status")
    assert "broken at sequence 2" in status.text and status.select_one("[role=alert]")


def test_text_search_pages_through_bounded_windows(app_client, monkeypatch):
    from app.audit import query

    monkeypatch.setattr(query, "SEARCH_WINDOW", 30)
    marks = app_client.marks
    # "user1" appears in the record entries only; each page looks at 30 entries at most.
    page = soup(app_client.get("/audit?q=user1"))
    first = seqs(page)
    assert first and all(s > marks["create"] - 40 for s in first)
    assert "searched back to sequence" in page.text
    found, url = list(first), page.find("a", string=lambda s: s and "Search older" in s)["href"]
    while url:
        page = soup(app_client.get(url))
        found += seqs(page)
        more = page.find("a", string=lambda s: s and ("Search older" in s or "Older" in s))
        url = more["href"] if more else None
    assert found == sorted(found, reverse=True) and len(found) == 30  # user1 = every 4th of 120
