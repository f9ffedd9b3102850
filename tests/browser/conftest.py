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
from playwright.sync_api import expect

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


# Playwright's assertions wait 5 s by default. `make test` runs two test processes on a 2-core
# machine, and the first view of step 2 loads every AWS managed policy from the sandbox: a
# page can take longer than 5 s to answer there without anything being wrong.
expect.set_options(timeout=20_000)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ADMIN_NAME = "admin"
ADMIN_PASSWORD = "browser-admin-password"


@dataclass
class LiveServer:
    url: str
    sandbox_endpoint: str
    process: subprocess.Popen[str]
    env: dict[str, str]
    log_path: Path
    admin_name: str = ADMIN_NAME
    admin_password: str = ADMIN_PASSWORD

    def add_user(self, name: str, role: str, password: str) -> None:
        """`roledesk users add` against this server's database (as an operator would)."""
        roledesk = str(Path(sys.executable).with_name("roledesk"))
        subprocess.run(
            [roledesk, "users", "add", name, "--role", role, "--password-stdin"],
            env=self.env,
            input=password + "\n",
            check=True,
            capture_output=True,
            text=True,
        )

    def boto3_client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.sandbox_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_server(
    tmp: Path,
    extra_env: dict[str, str] | None = None,
    *,
    with_admin: bool = True,
    start_timeout: float = 300,
) -> LiveServer:
    port = free_port()
    env = {
        **os.environ,
        "ROLEDESK_DATABASE_URL": f"sqlite:///{tmp / 'browser.sqlite3'}",
        "ROLEDESK_PORT": str(port),
        "ROLEDESK_SANDBOX_PORT": str(free_port()),
        "ROLEDESK_MODE": "sandbox",
        # The sandbox organization's three member accounts cost each start several seconds;
        # only the journeys that use them ask for it.
        "ROLEDESK_SANDBOX_ORGANIZATION": "false",
        **(extra_env or {}),
    }
    roledesk = str(Path(sys.executable).with_name("roledesk"))
    subprocess.run([roledesk, "db", "upgrade"], env=env, check=True, capture_output=True)
    if with_admin:
        subprocess.run(
            [roledesk, "users", "add", ADMIN_NAME, "--role", "admin", "--password-stdin"],
            env=env,
            input=ADMIN_PASSWORD + "\n",
            check=True,
            capture_output=True,
            text=True,
        )
    log_path = tmp / "server.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [roledesk, "serve", "--sandbox"], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    # Seeding the sandbox takes ~10 s alone; workers starting on a busy machine take minutes.
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if "Uvicorn running" in text and answers(f"http://127.0.0.1:{port}/healthz"):
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


def sign_in(tab, server: LiveServer, name: str, password: str) -> None:
    """Signs in through the sign-in form and waits for the roles page."""
    tab.goto(f"{server.url}/sign-in")
    tab.get_by_label("User name").fill(name)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(re.compile(r"/roles"))


# A form refused with 422 (the house rule for invalid input) makes Chromium log "Failed to load
# resource ... 422" for the page itself: expected, not a script error.
EXPECTED_CONSOLE = "Failed to load resource: the server responded with a status of 422"


def assert_header_fits(tab) -> None:
    """The header at the tab's width: brand, links and who/where on one row (issue 13) and
    nothing wider than the window (the account switcher once pushed "Sign out" 340 px
    beyond it at 1366 px)."""
    tops = tab.eval_on_selector_all(
        ".topbar > *", "items => items.map(i => i.getBoundingClientRect().top)"
    )
    assert max(tops) - min(tops) < 12, tops
    widths = tab.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


def is_console_error(message) -> bool:
    return message.type == "error" and not message.text.startswith(EXPECTED_CONSOLE)


# htmx logs a request the browser aborted as two console errors, `htmx:afterRequest` then
# `htmx:sendAbort`. A test that navigates (goto, a link) while a live preview's request is in
# flight aborts it, as a person leaving the page does: seen once on a loaded machine.
ABORTED = ("htmx:afterRequest,", "htmx:sendAbort,")


def without_aborts(logged: list[str]) -> list[str]:
    """The console errors, less the pairs htmx logs for a request the browser aborted (a
    failed or timed-out request logs afterRequest with sendError or timeout: kept)."""
    kept: list[str] = []
    for text in logged:
        if text.startswith(ABORTED[1]) and kept and kept[-1].startswith(ABORTED[0]):
            kept.pop()
            continue
        kept.append(text)
    return kept


@pytest.fixture(params=[True, False], ids=["js", "no-js"])
def anonymous_page(request, browser):
    """A fresh browser context, with JavaScript on and off, not signed in; fails on console
    errors (CSP violations are console errors)."""
    context = browser.new_context(java_script_enabled=request.param)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if is_console_error(m) else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.js_enabled = request.param  # type: ignore[attr-defined]
    tab.console_errors = errors  # type: ignore[attr-defined]  # tests may drop expected ones
    yield tab
    # What the pages logged while the test used them; closing the context aborts requests
    # still in flight (htmx then logs htmx:sendAbort), which is the test ending, not a fault.
    logged = without_aborts(errors)
    context.close()
    assert logged == [], logged


@pytest.fixture
def page(anonymous_page, live_server):
    """Like `anonymous_page`, signed in as the live server's admin."""
    sign_in(anonymous_page, live_server, live_server.admin_name, live_server.admin_password)
    return anonymous_page


def follow_progress(page, done, timeout: float = 60.0) -> None:
    """Follow a progress page to its end as a person does: with JavaScript it updates by
    itself; without, press "Check progress" (its request waits on the server for news, up
    to a few seconds) until `done` (a locator of the finished page) shows."""
    if page.js_enabled:
        expect(done).to_be_visible(timeout=timeout * 1000)
        return
    deadline = time.monotonic() + timeout
    check = page.get_by_role("button", name="Check progress")
    while True:
        # The page a click led to may still be loading (a loaded machine): wait until it shows
        # its result or the button, rather than judging a page half parsed.
        expect(done.or_(check).first).to_be_visible(timeout=10_000)
        if done.count():
            break
        assert time.monotonic() < deadline, f"{page.url} did not finish"
        check.click()
        page.wait_for_load_state()
    expect(done.first).to_be_visible()
