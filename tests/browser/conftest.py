"""Browser journeys: the real `roledesk serve` in a subprocess on a free port (with its own
embedded sandbox and SQLite file), driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ROLEDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    sandbox_endpoint: str
    process: subprocess.Popen[str]
    env: dict[str, str]
    log_path: Path

    def boto3_client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.sandbox_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> LiveServer:
    port = free_port()
    env = {
        **os.environ,
        "ROLEDESK_DATABASE_URL": f"sqlite:///{tmp / 'browser.sqlite3'}",
        "ROLEDESK_PORT": str(port),
        "ROLEDESK_SANDBOX_PORT": str(free_port()),
        "ROLEDESK_MODE": "sandbox",
        **(extra_env or {}),
    }
    roledesk = str(Path(sys.executable).with_name("roledesk"))
    subprocess.run([roledesk, "db", "upgrade"], env=env, check=True, capture_output=True)
    log_path = tmp / "server.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [roledesk, "serve", "--sandbox"], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if "Uvicorn running" in text:
            endpoint = re.search(r"AWS sandbox \(moto\) at (\S+)", text)
            assert endpoint, text
            return LiveServer(f"http://127.0.0.1:{port}", endpoint.group(1), process, env, log_path)
        if process.poll() is not None:
            raise RuntimeError(f"roledesk serve exited:\n{text}")
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"roledesk serve did not start:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("live"))
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# A form refused with 422 (the house rule for invalid input) makes Chromium log "Failed to load
# resource ... 422" for the page itself: expected, not a script error.
EXPECTED_CONSOLE = "Failed to load resource: the server responded with a status of 422"


def is_console_error(message) -> bool:
    return message.type == "error" and not message.text.startswith(EXPECTED_CONSOLE)


@pytest.fixture(params=[True, False], ids=["js", "no-js"])
def page(request, browser):
    """A fresh browser context, with JavaScript on and off; fails on console errors."""
    context = browser.new_context(java_script_enabled=request.param)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if is_console_error(m) else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.js_enabled = request.param  # type: ignore[attr-defined]
    yield tab
    context.close()
    assert errors == [], errors
