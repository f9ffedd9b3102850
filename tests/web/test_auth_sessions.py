"""Sessions: new id at sign-in, idle and absolute timeouts, sign-out destroys the session,
cookie attributes over HTTP and HTTPS; throttling; audit records of sign-in and sign-out."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.models import UserSession
from app.auth.sessions import token_hash
from app.models import AuditEvent
from tests.conftest import TEST_PASSWORD, add_user, csrf_token_for, sign_in


class FakeClock:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now


@pytest.fixture
def clock(web_app):
    """Moves sessions' and throttling's time by hand."""
    from app.auth.clock import utc_now

    fake = FakeClock(utc_now())
    web_app.state.auth.sessions.clock = fake
    web_app.state.auth.throttle.clock = fake
    return fake


def session_cookie(client):
    return client.cookies.get("roledesk_session")


def audit_rows(services, action):
    with services.db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_sign_in_sets_a_new_session_id_and_drops_any_earlier_one(web_app, anonymous_client):
    add_user(web_app, "alice", "viewer")
    planted = "planted-by-attacker-" + "x" * 24
    anonymous_client.cookies.set("roledesk_session", planted, domain="testserver.local")
    response = sign_in(anonymous_client, "alice")
    assert response.status_code == 303 and response.headers["location"] == "/roles"
    first = session_cookie(anonymous_client)
    assert first and first != planted and len(first) == 43
    sign_in(anonymous_client, "alice")
    second = session_cookie(anonymous_client)
    assert second != first
    old = TestClient(web_app)
    old.cookies.set("roledesk_session", first)
    assert old.get("/roles", follow_redirects=False).status_code == 303  # fixation: old is dead
    # Only a hash is stored.
    with web_app.state.services.db.session() as s:
        hashes = set(s.scalars(select(UserSession.id_hash)))
    assert token_hash(second) in hashes and second not in hashes


def test_cookie_attributes_over_http(web_app, anonymous_client):
    add_user(web_app, "alice", "viewer")
    response = sign_in(anonymous_client, "alice")
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("roledesk_session=")
    )
    attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=lax"} <= attrs
    assert "secure" not in attrs and not any(a.startswith(("max-age", "expires")) for a in attrs)


def test_cookie_over_https_is_host_prefixed_and_secure(web_app):
    add_user(web_app, "alice", "viewer")
    with TestClient(web_app, base_url="https://testserver") as secure:
        response = sign_in(secure, "alice")
        cookie = next(
            c
            for c in response.headers.get_list("set-cookie")
            if c.startswith("__Host-roledesk_session=")
        )
        attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=lax", "secure"} <= attrs
        assert not any(a.startswith("domain") for a in attrs)
        assert secure.get("/roles").status_code == 200
        page = secure.get("/roles")
        assert page.headers["strict-transport-security"].startswith("max-age=")


def test_idle_timeout(client, clock):
    assert client.get("/roles").status_code == 200
    clock.now += timedelta(minutes=29)
    assert client.get("/roles").status_code == 200  # activity keeps it alive
    clock.now += timedelta(minutes=29)
    assert client.get("/roles").status_code == 200
    clock.now += timedelta(minutes=30, seconds=1)
    response = client.get("/roles", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")


def test_absolute_timeout_even_when_active(client, clock):
    steps = 0
    while client.get("/roles", follow_redirects=False).status_code == 200 and steps < 100:
        clock.now += timedelta(minutes=20)  # a request every 20 minutes: never idle
        steps += 1
    # Signed in just before the clock started: alive at 11 h 40, gone at 12 h.
    assert steps == 36


def test_sign_out_destroys_the_session_and_replay_gets_nothing(client, web_app, seeded):
    token = session_cookie(client)
    response = client.post(
        "/sign-out", data={"csrf_token": csrf_token_for(client)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")
    assert "no-store" in response.headers["cache-control"]
    replay = TestClient(web_app)
    replay.cookies.set("roledesk_session", token)
    assert replay.get("/roles", follow_redirects=False).status_code == 303
    htmx = replay.get("/roles?q=a", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 401 and "role-rows" not in htmx.text
    assert audit_rows(seeded, "roledesk:SignOut")[-1].actor == "admin"


def test_disabled_user_loses_their_session_at_once(client_as, client, web_app):
    viewer = client_as("viewer")
    assert viewer.get("/roles").status_code == 200
    client.post("/users/viewer-user/disable", data={"csrf_token": csrf_token_for(client)})
    assert viewer.get("/roles", follow_redirects=False).status_code == 303
    again = TestClient(web_app)
    assert sign_in(again, "viewer-user").status_code == 401


def test_sign_in_audit_records_success_and_failure_without_passwords(
    web_app, anonymous_client, seeded
):
    add_user(web_app, "alice", "operator")
    sign_in(anonymous_client, "alice", "wrong password here")
    sign_in(anonymous_client, "alice")
    rows = audit_rows(seeded, "roledesk:SignIn")
    assert [(r.actor, r.outcome, r.error_code) for r in rows] == [
        ("alice", "failed", "BadCredentials"),
        ("alice", "succeeded", None),
    ]
    assert rows[0].kind == "record" and rows[0].source_ip == "testclient"
    with seeded.db.session() as s:
        dumped = " ".join(str(v) for r in s.scalars(select(AuditEvent)) for v in vars(r).values())
    assert "wrong password here" not in dumped and TEST_PASSWORD not in dumped


def test_throttling_slows_then_locks_a_user(web_app, anonymous_client, clock):
    add_user(web_app, "alice", "viewer")
    statuses = []
    for _ in range(3):
        statuses.append(sign_in(anonymous_client, "alice", "bad password 123").status_code)
    assert statuses == [401, 401, 401]
    # Now each attempt must wait: even the right password is refused right away.
    refused = sign_in(anonymous_client, "alice")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "wait" in refused.text
    clock.now += timedelta(seconds=3)
    assert sign_in(anonymous_client, "alice", "bad password 123").status_code == 401
    for _ in range(6):  # keep failing, waiting out each delay
        clock.now += timedelta(seconds=61)
        assert sign_in(anonymous_client, "alice", "bad password 123").status_code == 401
    clock.now += timedelta(seconds=61)
    locked = sign_in(anonymous_client, "alice")  # 10 failures: locked, right password or not
    assert locked.status_code == 429 and "locked" in locked.text
    clock.now += timedelta(minutes=16)
    assert sign_in(anonymous_client, "alice").status_code == 303


def test_throttling_by_address_covers_many_names(web_app, anonymous_client, clock):
    add_user(web_app, "alice", "viewer")
    for i in range(3):
        assert sign_in(anonymous_client, f"guess{i}", "bad password 123").status_code == 401
    # A fourth name from the same address must wait too.
    assert sign_in(anonymous_client, "alice").status_code == 429
    clock.now += timedelta(seconds=5)
    assert sign_in(anonymous_client, "alice").status_code == 303


def test_sign_in_redirects_only_to_local_paths(web_app, anonymous_client):
    add_user(web_app, "alice", "viewer")
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = sign_in(anonymous_client, "alice", next_=evil)
        assert response.headers["location"] == "/roles", evil
    assert sign_in(anonymous_client, "alice", next_="/roles?q=ec2").headers["location"] == (
        "/roles?q=ec2"
    )


def test_expired_sessions_are_purged_at_the_next_sign_in(client, web_app, clock):
    clock.now += timedelta(hours=13)
    add_user(web_app, "late", "viewer")
    with TestClient(web_app) as other:
        sign_in(other, "late")
    with web_app.state.services.db.session() as s:
        assert len(list(s.scalars(select(UserSession)))) == 1
