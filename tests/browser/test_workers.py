"""`roledesk serve --workers 2`: both worker processes share the parent's sandbox and the
database, so every request sees the same account whichever worker answers."""

import time
import urllib.request

from tests.browser.conftest import start_server


def test_two_workers_serve_the_same_sandbox(tmp_path):
    server = start_server(tmp_path, {"ROLEDESK_WORKERS": "2"})
    try:
        deadline = time.monotonic() + 60
        while server.log_path.read_text().count("Started server process") < 2:
            assert time.monotonic() < deadline, server.log_path.read_text()
            time.sleep(0.2)
        pages = [
            urllib.request.urlopen(f"{server.url}/roles", timeout=30).read().decode()
            for _ in range(6)
        ]
        assert all(server.sandbox_endpoint in page for page in pages)
        assert all(page.count('href="/roles/') == 13 for page in pages)
    finally:
        server.process.terminate()
        server.process.wait(timeout=20)
