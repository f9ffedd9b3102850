"""Several RoleDesk processes show one state (issue 16): `roledesk serve --workers 2` on SQLite
and PostgreSQL, and two separate `roledesk serve` processes on different ports sharing one
PostgreSQL database and one sandbox. Real processes over HTTP: a role created through one is
listed, offered to EC2 and its name (any spelling) refused by the others at once; two
spellings of one name created through both servers at the same instant make one role; a
refresh on one shows a role made outside RoleDesk on all."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import boto3
import httpx
import pytest

from tests.browser.conftest import ADMIN_NAME, ADMIN_PASSWORD, LiveServer, start_server
from tests.web.test_wizard_flow import create, details, fill_trust, start

EC2_TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
)
# Several real servers, each seeding a sandbox and starting workers: minutes on a busy machine.
pytestmark = pytest.mark.timeout(1200)
# A new connection for each request, so every worker process gets to answer.
CLOSE = {"Connection": "close"}
LOADS = 6


def stop(server: LiveServer) -> None:
    """Stop the server; its workers finish their requests first (slow on a busy machine)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=20)


def wait_for_workers(server: LiveServer, count: int) -> None:
    deadline = time.monotonic() + 300
    while server.log_path.read_text().count("Started server process") < count:
        assert time.monotonic() < deadline, server.log_path.read_text()
        time.sleep(0.2)


@contextmanager
def signed_in(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        browser.get("/sign-in")
        response = browser.post(
            "/sign-in",
            data={
                "name": ADMIN_NAME,
                "password": ADMIN_PASSWORD,
                "next": "/roles",
                "csrf_token": browser.cookies["roledesk_csrf"],
            },
        )
        assert response.status_code == 303, response.text
        yield browser


def create_ec2_role(browser: httpx.Client, name: str) -> httpx.Response:
    """The wizard, as a person without JavaScript uses it: an EC2 role (RoleDesk gives it an
    instance profile of its own name)."""
    draft = start(browser, {"entity_type": "service", "service": "ec2.amazonaws.com"})
    fill_trust(browser, draft, {"entity_type": "service", "service": "ec2.amazonaws.com"})
    return create(browser, draft, details(name))


def listed(browser: httpx.Client, name: str) -> bool:
    page = browser.get("/roles", params={"q": name}, headers=CLOSE).text
    return f'href="/roles/{name}"' in page


def offered_to_ec2(browser: httpx.Client, name: str) -> bool:
    page = browser.get("/instances", headers=CLOSE).text
    return re.search(rf'<option value="(profile|role):{re.escape(name)}"', page) is not None


def refused_as_taken(response: httpx.Response, existing: str) -> bool:
    return response.status_code == 422 and f"A role named {existing} already exists" in (
        response.text
    )


def make_role_outside(server: LiveServer, name: str) -> None:
    boto3.client(
        "iam",
        endpoint_url=server.sandbox_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST)


def roles_named(server: LiveServer, name: str) -> list[str]:
    """Every role in the sandbox whose name is `name` in any spelling (boto3, not RoleDesk)."""
    iam = boto3.client(
        "iam",
        endpoint_url=server.sandbox_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return [
        r["RoleName"]
        for page in iam.get_paginator("list_roles").paginate()
        for r in page["Roles"]
        if r["RoleName"].lower() == name.lower()
    ]


def refresh(browser: httpx.Client) -> None:
    browser.get("/roles")  # its CSRF cookie
    response = browser.post(
        "/roles/refresh", data={"csrf_token": browser.cookies["roledesk_csrf"]}, headers=CLOSE
    )
    assert response.status_code == 303


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_workers_show_one_state(tmp_path, request, database):
    env = {"ROLEDESK_WORKERS": "2"}
    if database == "postgres":
        env["ROLEDESK_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    server = start_server(tmp_path, env)
    try:
        wait_for_workers(server, 2)
        with signed_in(server) as browser:
            pages = [browser.get("/roles", headers=CLOSE).text for _ in range(LOADS)]
            assert all(server.sandbox_endpoint in page for page in pages)
            assert all(page.count('href="/roles/') == 16 for page in pages)

            # Each worker has now loaded the list; a role created through one of them...
            created = create_ec2_role(browser, "mw-ec2-a")
            assert created.status_code == 303, created.text
            # ...is listed and offered to EC2 by whichever answers.
            assert all(listed(browser, "mw-ec2-a") for _ in range(LOADS))
            assert all(offered_to_ec2(browser, "mw-ec2-a") for _ in range(LOADS))
            # Its name in another spelling is refused, whichever worker checks it.
            for _ in range(2):
                variant = create_ec2_role(browser, "MW-EC2-A")
                assert refused_as_taken(variant, "mw-ec2-a"), variant.text

            make_role_outside(server, "mw-outside")
            refresh(browser)  # on one worker
            assert all(listed(browser, "mw-outside") for _ in range(LOADS))
    finally:
        stop(server)


def test_two_servers_on_one_postgresql_show_one_state(tmp_path, postgres_url):
    env = {"ROLEDESK_DATABASE_URL": postgres_url}
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first = start_server(tmp_path / "a", env)
    try:
        # The second replica joins the first one's sandbox: one account, one database.
        second = start_server(
            tmp_path / "b",
            {**env, "ROLEDESK_AWS_ENDPOINT_URL": first.sandbox_endpoint},
            with_admin=False,
        )
        try:
            assert second.sandbox_endpoint == first.sandbox_endpoint
            with signed_in(first) as one, signed_in(second) as other:
                assert not listed(other, "mw-ec2-b")  # loaded before the create
                assert not offered_to_ec2(other, "mw-ec2-b")
                created = create_ec2_role(one, "mw-ec2-b")
                assert created.status_code == 303, created.text
                assert listed(other, "mw-ec2-b") and listed(one, "mw-ec2-b")
                assert offered_to_ec2(other, "mw-ec2-b") and offered_to_ec2(one, "mw-ec2-b")
                variant = create_ec2_role(other, "MW-EC2-B")
                assert refused_as_taken(variant, "mw-ec2-b"), variant.text

                # Both servers asked at the same instant for one name in two spellings:
                # both pass the check before the run, one run creates the role.
                race = threading.Barrier(2)

                def create_at_once(pair: tuple[httpx.Client, str]) -> int:
                    browser, name = pair
                    race.wait()
                    return create_ec2_role(browser, name).status_code

                with ThreadPoolExecutor(2) as pool:
                    codes = list(pool.map(create_at_once, [(one, "MW-EC2-C"), (other, "mw-ec2-c")]))
                assert all(code in (303, 422) for code in codes), codes
                assert roles_named(first, "mw-ec2-c") in (["MW-EC2-C"], ["mw-ec2-c"])

                make_role_outside(first, "mw-outside-b")
                assert not listed(other, "mw-outside-b")  # the held copy, until a refresh
                refresh(one)
                assert listed(other, "mw-outside-b") and listed(one, "mw-outside-b")
                assert offered_to_ec2(other, "mw-outside-b")
        finally:
            stop(second)
    finally:
        stop(first)
