"""`roledesk serve --workers 2`: both worker processes share the parent's sandbox and the
database, so every request sees the same account (and the same session) whichever worker
answers."""

import time

import httpx

from tests.browser.conftest import start_server


def test_two_workers_serve_the_same_sandbox(tmp_path):
    server = start_server(tmp_path, {"ROLEDESK_WORKERS": "2"})
    try:
        deadline = time.monotonic() + 60
        while server.log_path.read_text().count("Started server process") < 2:
            assert time.monotonic() < deadline, server.log_path.read_text()
            time.sleep(0.2)
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            browser.get("/sign-in")
            signed_in = browser.post(
                "/sign-in",
                data={
                    "name": server.admin_name,
                    "password": server.admin_password,
                    "next": "/roles",
                    "csrf_token": browser.cookies["roledesk_csrf"],
                },
            )
            assert signed_in.status_code == 303, signed_in.text
            # A new connection each time, so both workers get to answer.
            pages = [browser.get("/roles", headers={"Connection": "close"}).text for _ in range(6)]
        assert all(server.sandbox_endpoint in page for page in pages)
        assert all(page.count('href="/roles/') == 16 for page in pages)
    finally:
        server.process.terminate()
        server.process.wait(timeout=20)
