"""XSS payloads and the checker for every field RoleDesk echoes.

To cover a new field, add an entry to ECHO_FIELDS: a function that puts `payload` into the
field (through RoleDesk's own paths where there is one) and returns the URL of the page that
shows it. tests/web/test_xss.py checks the HTML of every (field, payload) pair and
tests/browser/test_auth_journey.py opens the pages in Chromium.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bs4 import BeautifulSoup

MARK = "roledeskxss"
PAYLOADS = [
    f"<script>window.{MARK}=1</script>",
    f'"><img src=x onerror="window.{MARK}=1">',
    f"'><svg onload=window.{MARK}=1>",
    f"</textarea><script>window.{MARK}=2</script>",
    f"javascript:window.{MARK}=3",
    f'<a href="javascript:window.{MARK}=4">x</a>',
    f"{{{{7*7}}}}<b hx-get=/users hx-trigger=load>{MARK}</b>",
    f"<iframe srcdoc='<script>parent.{MARK}=5</script>'></iframe>",
]

Putter = Callable[[Any, str], str]  # (services, payload) -> URL showing it


def assert_escaped(html: str, payload: str) -> None:
    """The payload is shown as text, never as markup: no element, attribute or handler from
    it exists in the parsed page."""
    if "<" in payload:
        assert payload not in html, "payload appears unescaped"
    page = BeautifulSoup(html, "html.parser")
    for element in page.find_all(True):
        for name, value in element.attrs.items():
            assert not name.lower().startswith("on"), f"handler attribute {name} in {element}"
            text = " ".join(value) if isinstance(value, list) else str(value)
            if name in ("href", "src", "action", "hx-get", "hx-post", "formaction"):
                # Our own links may carry the payload URL-encoded in a query string, never as
                # a script URL or raw markup.
                url = text.strip().lower()
                assert not url.startswith(("javascript:", "data:", "vbscript:")), (name, text)
                assert "<" not in text, f"raw markup in {name} of <{element.name}>"
            assert name != "srcdoc", f"srcdoc on <{element.name}>"
        if element.name in ("script", "iframe", "svg", "img"):
            assert MARK not in str(element), f"payload produced <{element.name}>"
    assert "7*7" not in payload or "49" + "<b" not in html, "template injection evaluated"


# Each entry: (client signed in as admin, services, payload) -> HTML of the page showing it.
EchoField = Callable[[Any, Any, str], str]

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _role_with(services: Any, **kwargs: Any) -> str:
    """Creates a role through the audited path; returns its name."""
    import uuid

    from app.audit.audited import AuditContext, Change

    name = f"xss-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:iam::{services.identity.account}:role/{name}"
    services.audited.call(
        AuditContext(),
        Change(arn),
        services.iam.create_role,
        name=name,
        trust_policy=TRUST,
        **kwargs,
    )
    return name


def role_description(client: Any, services: Any, payload: str) -> str:
    name = _role_with(services, description=payload)
    return str(client.get(f"/roles/{name}").text)


def role_tags(client: Any, services: Any, payload: str) -> str:
    from app.aws.types import Tag

    name = _role_with(services, tags=(Tag("note", payload),))
    return str(client.get(f"/roles/{name}").text)


def inline_policy_json(client: Any, services: Any, payload: str) -> str:
    from app.audit.audited import AuditContext, Change

    name = _role_with(services)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": payload}},
            }
        ],
    }
    services.audited.call(
        AuditContext(), Change(name), services.iam.put_role_policy, name, "xss", document
    )
    return str(client.get(f"/roles/{name}").text)


def roles_search_box(client: Any, services: Any, payload: str) -> str:
    full = client.get("/roles", params={"q": payload}).text
    fragment = client.get("/roles", params={"q": payload}, headers={"HX-Request": "true"}).text
    return str(full + fragment)


def aws_error_message(client: Any, services: Any, payload: str) -> str:
    from app.aws.errors import AccessDenied

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise AccessDenied(payload, payload, request_id=payload, operation="GetRole")

    original = services.iam.get_role
    services.iam.get_role = denied
    try:
        full = client.get("/roles/web-app-ec2").text
        htmx = client.get("/roles/web-app-ec2", headers={"HX-Request": "true"}).text
    finally:
        services.iam.get_role = original
    return str(full + htmx)


def user_name_on_users_page(client: Any, services: Any, payload: str) -> str:
    from tests.conftest import csrf_token_for

    form = {"name": payload, "role": "viewer", "password": "p" * 12, "confirm": "p" * 12}
    return str(client.post("/users", data={**form, "csrf_token": csrf_token_for(client)}).text)


def user_name_on_sign_in(client: Any, services: Any, payload: str) -> str:
    from fastapi.testclient import TestClient

    from tests.conftest import sign_in

    with TestClient(client.app) as anonymous:
        return str(sign_in(anonymous, payload, "whatever-password").text)


def sign_in_next(client: Any, services: Any, payload: str) -> str:
    from urllib.parse import quote

    from fastapi.testclient import TestClient

    with TestClient(client.app) as anonymous:
        page = anonymous.get("/roles?q=" + quote(payload[:60]), follow_redirects=True)
        return str(page.text)


ECHO_FIELDS: dict[str, EchoField] = {
    "role description": role_description,
    "role tags": role_tags,
    "inline policy JSON": inline_policy_json,
    "roles search box": roles_search_box,
    "AWS error message": aws_error_message,
    "user name (users page)": user_name_on_users_page,
    "user name (sign-in)": user_name_on_sign_in,
    "page to return to after sign-in": sign_in_next,
}
