"""The access review pages of two apps (two workers' Services on one database and one
sandbox): "Scan again" posted to one scans once, and the other's page shows that scan's
roles without scanning itself."""

from __future__ import annotations

import time

from bs4 import BeautifulSoup

from app.main import create_app
from app.services import build_services
from tests.conftest import csrf_token_for, signed_in
from tests.security.aws_calls import AwsCalls


def test_scan_again_through_one_app_is_shown_by_the_other(seeded, settings, sandbox):
    second = build_services(settings, sandbox_endpoint=sandbox.endpoint_url)
    calls = AwsCalls()
    second.clients.hook_every_client("before-call", calls)
    try:
        with signed_in(create_app(seeded)) as one, signed_in(create_app(second)) as other:
            posted = one.post("/access-review/scan", data={"csrf_token": csrf_token_for(one)})
            assert posted.status_code == 200  # followed to the review page
            seeded.access_scan.wait(120)
            deadline = time.monotonic() + 30
            while seeded.access_scan.progress.running and time.monotonic() < deadline:
                time.sleep(0.1)
            page = BeautifulSoup(other.get("/access-review").text, "html.parser")
            rows = page.select("table.review tbody tr")
            held = seeded.access_scan.result
            assert held is not None and len(rows) == min(len(held.roles), 25) > 0
            assert calls.count("GetAccountAuthorizationDetails") == 0
            assert not second.access_scan.progress.running
    finally:
        second.db.dispose()
