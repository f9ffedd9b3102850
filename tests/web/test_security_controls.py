"""CSRF refusals (with no AWS call), security headers on every page, trusted hosts, OpenAPI
off by default, generic 500s, and templates free of inline script and style."""

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.web.templating import TEMPLATES_DIR
from tests.conftest import csrf_token_for
from tests.web.headers import check_headers


@pytest.fixture
def refresh_calls(seeded, monkeypatch):
    """Counts the AWS reloads POST /roles/refresh would make."""
    calls = []
    real = seeded.inventory.refresh
    monkeypatch.setattr(seeded.inventory, "refresh", lambda: calls.append(1) or real())
    return calls


@pytest.mark.parametrize(
    ("case", "headers", "data"),
    [
        ("missing token", {}, {}),
        ("wrong token", {}, {"csrf_token": "x" * 43}),
        ("wrong header", {"X-CSRF-Token": "y" * 43}, {}),
        ("cross-site", {"Sec-Fetch-Site": "cross-site"}, "valid"),
        ("same-site", {"Sec-Fetch-Site": "same-site"}, "valid"),
    ],
)
def test_forged_requests_are_refused_without_aws_calls(
    client_as, refresh_calls, case, headers, data
):
    operator = client_as("operator")
    if data == "valid":
        data = {"csrf_token": csrf_token_for(operator)}
    response = operator.post("/roles/refresh", headers=headers, data=data)
    assert response.status_code == 403, case
    assert refresh_calls == []
    ok = operator.post(
        "/roles/refresh",
        data={"csrf_token": csrf_token_for(operator)},
        headers={"Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and refresh_calls == [1]


def test_token_is_bound_to_the_session(client_as, refresh_calls):
    """A CSRF cookie planted in the victim's browser (with a token the attacker knows) does
    not pass: the signed-in session only accepts the token issued with it."""
    operator = client_as("operator")
    planted = "p" * 43
    operator.cookies.set("roledesk_csrf", planted, domain="testserver.local")
    response = operator.post("/roles/refresh", data={"csrf_token": planted})
    assert response.status_code == 403 and refresh_calls == []


def test_sign_in_form_needs_the_token_too(web_app, anonymous_client):
    response = anonymous_client.post("/sign-in", data={"name": "admin", "password": "x" * 12})
    assert response.status_code == 403


def test_no_get_route_changes_state(web_app, client):
    """GET never changes anything: the only state-changing routes accept POST alone."""
    from app.auth.permissions import iter_routes

    for route in iter_routes(web_app.routes):
        methods = getattr(route, "methods", set())
        if route.path in ("/roles/refresh", "/sign-out") or route.path.startswith("/users/"):
            assert methods == {"POST"}, route.path


# Every page a signed-in admin can GET on this branch (plus a 404 and the health check).
PAGES = [
    "/roles",
    "/roles?q=ec2",
    "/roles/web-app-ec2",
    "/roles/last-activity?name=web-app-ec2",
    "/policy?arn=arn:aws:iam::aws:policy/AWSLambdaBasicExecutionRole",
    "/users",
    "/no-such-page",
    "/healthz",
]


def test_security_headers_on_every_page(client, anonymous_client):
    for url in PAGES:
        response = client.get(url)
        check_headers(response)
        assert response.headers["cache-control"] == "no-store", url
        assert "strict-transport-security" not in response.headers  # plain HTTP
    for url in ("/sign-in", "/roles", "/static/app.css"):
        check_headers(anonymous_client.get(url))
    assert "no-store" not in anonymous_client.get("/static/app.css").headers.get(
        "cache-control", ""
    )


def test_hsts_when_roledesk_https_is_set(seeded):
    seeded.settings.https = True
    with TestClient(create_app(seeded)) as behind_proxy:
        response = behind_proxy.get("/sign-in")
        assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_unknown_host_is_refused(client):
    assert client.get("/roles", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/roles", headers={"Host": "localhost"}).status_code == 200


def test_allowed_hosts_setting(seeded):
    seeded.settings.allowed_hosts = "roledesk.example.com"
    with TestClient(create_app(seeded), base_url="http://roledesk.example.com") as named:
        assert named.get("/sign-in").status_code == 200
    with TestClient(create_app(seeded)) as other:
        assert other.get("/sign-in").status_code == 400


def test_openapi_is_off_unless_enabled_and_then_needs_sign_in(seeded, client):
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404
    seeded.settings.openapi = True
    with TestClient(create_app(seeded)) as enabled:
        assert enabled.get("/openapi.json", follow_redirects=False).status_code == 303
        assert enabled.get("/docs").status_code == 404


def test_server_error_is_generic_with_a_correlation_id(client, seeded, monkeypatch, caplog):
    def boom(name):
        raise RuntimeError("secret detail: password=hunter2")

    monkeypatch.setattr(seeded.iam, "get_role", boom)
    failing = TestClient(client.app, raise_server_exceptions=False, cookies=client.cookies)
    response = failing.get("/roles/web-app-ec2")
    assert response.status_code == 500
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    reference = re.search(r"Reference: ([0-9a-f]{12})", response.text).group(1)
    assert reference in caplog.text and "hunter2" in caplog.text


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "on*= handler"),
    (re.compile(r"\shx-on", re.I), "hx-on attribute (needs eval)"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_templates_have_no_inline_script_or_style():
    templates = sorted(Path(TEMPLATES_DIR).rglob("*.html"))
    assert len(templates) > 10
    for path in templates:
        text = path.read_text()
        for pattern, what in INLINE:
            assert not pattern.search(text), f"{what} in {path}"


def test_htmx_config_is_locked_down(client):
    import json

    from bs4 import BeautifulSoup

    page = BeautifulSoup(client.get("/roles").text, "html.parser")
    config = json.loads(page.select_one('meta[name="htmx-config"]')["content"])
    assert config["allowEval"] is False and config["allowScriptTags"] is False
    assert config["selfRequestsOnly"] is True and config["historyCacheSize"] == 0
    assert config["includeIndicatorStyles"] is False
