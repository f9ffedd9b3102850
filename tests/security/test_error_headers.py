"""Issue 12, finding 5: a server error is answered like every other response: the security
headers (CSP, frame, nosniff, no-store), a generic page with a correlation id, and a
connection that stays open. Every registered route is walked with a forced exception, so
routes added later are covered without editing this file."""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app import migrate
from app.auth.guard import authorize
from tests.web.headers import check_headers
from tests.web.test_auth_route_walk import concrete, endpoints

REFERENCE = re.compile(r"Reference: ([0-9a-f]{12})")


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The database plays no part here: SQLite only."""
    migrate.upgrade(sqlite_url)
    return sqlite_url


def _boom() -> None:
    raise RuntimeError("forced failure: secret=hunter2")


def test_every_route_answers_a_forced_exception_with_headers_and_a_reference(web_app, caplog):
    web_app.dependency_overrides[authorize] = _boom  # runs first in every route
    with TestClient(web_app, raise_server_exceptions=False) as client:
        routes = endpoints(web_app)
        assert len(routes) > 30
        for route, method in routes:
            url = concrete(route.path)
            response = client.request(method, url, data={} if method != "GET" else None)
            where = f"{method} {url}"
            assert response.status_code == 500, where
            check_headers(response)
            assert response.headers["x-frame-options"] == "DENY", where
            assert response.headers["cache-control"] == "no-store", where
            assert "hunter2" not in response.text and "RuntimeError" not in response.text
            match = REFERENCE.search(response.text)
            assert match, where
            assert match.group(1) in caplog.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_error_keeps_the_connection_open(web_app):
    """uvicorn closes the connection when an exception escapes the app after the 500 was
    sent; answered inside the app, the same keep-alive connection serves the next request."""
    web_app.dependency_overrides[authorize] = _boom
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(web_app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for _ in range(2):  # the second request reuses the first one's connection
            conn.request("GET", "/roles")
            response = conn.getresponse()
            body = response.read().decode()
            assert response.status == 500 and REFERENCE.search(body)
            assert response.getheader("content-security-policy")
            assert response.getheader("connection") != "close"
        conn.close()
    finally:
        server.should_exit = True
        thread.join(10)
