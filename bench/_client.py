"""A TestClient on the real app, signed in as an admin through the sign-in form, so the
benchmarks measure what a person gets (session check included)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from app.audit.audited import AuditContext
from app.auth.permissions import Role
from app.main import create_app
from app.services import Services
from app.web.csrf import COOKIE


def sign_in_admin(client: TestClient, app: Any, name: str, password: str, next_: str) -> None:
    """Create admin `name` if needed and sign `client` in through the real form."""
    if app.state.auth.users.get(name) is None:
        app.state.auth.users.add(AuditContext(actor="bench"), name, Role.ADMIN, password)
    client.get("/sign-in")
    response = client.post(
        "/sign-in",
        data={
            "name": name,
            "password": password,
            "next": next_,
            "csrf_token": client.cookies[COOKIE],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def signed_in_client(services: Services, wrap: Callable[[Any], Any] | None = None) -> TestClient:
    """`wrap`, if given, wraps the ASGI app (a timer, say); the client talks to the wrapper."""
    app = create_app(services)
    client = TestClient(wrap(app) if wrap is not None else app)
    sign_in_admin(client, app, "bench", secrets.token_urlsafe(16), "/roles")
    return client
