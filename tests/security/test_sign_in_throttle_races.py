"""Issue 12, finding 2: sign-in throttling holds when guesses arrive at once. Twenty wrong
guesses sent together (real threads, each its own HTTP client, on SQLite and PostgreSQL) must
count as twenty: exactly the free failures are evaluated, the rest answered 429, per user
name and per client address."""

from __future__ import annotations

import threading
from collections import Counter

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.auth.models import SignInAttempt
from app.auth.throttle import FREE_FAILURES
from tests.conftest import add_user, csrf_token_for

GUESSES = 20


def _guess_at_once(web_app, names: list[str]) -> Counter[int]:
    clients = [TestClient(web_app) for _ in names]
    for c in clients:
        c.__enter__()
    tokens = [csrf_token_for(c) for c in clients]
    barrier = threading.Barrier(len(names))
    statuses: list[int] = []

    def guess(i: int) -> None:
        barrier.wait()
        response = clients[i].post(
            "/sign-in",
            data={"name": names[i], "password": f"wrong guess {i:04d}", "csrf_token": tokens[i]},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.__exit__(None, None, None)
    return Counter(statuses)


def _failures_recorded(web_app) -> int:
    with web_app.state.services.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(SignInAttempt)) or 0)


def test_concurrent_guesses_for_one_user_count_one_by_one(web_app):
    add_user(web_app, "alice", "admin")
    statuses = _guess_at_once(web_app, ["alice"] * GUESSES)
    assert statuses == Counter({401: FREE_FAILURES, 429: GUESSES - FREE_FAILURES})
    assert _failures_recorded(web_app) == FREE_FAILURES


def test_concurrent_guesses_from_one_address_count_one_by_one(web_app):
    names = [f"nobody{i}" for i in range(GUESSES)]
    statuses = _guess_at_once(web_app, names)
    assert statuses == Counter({401: FREE_FAILURES, 429: GUESSES - FREE_FAILURES})
    assert _failures_recorded(web_app) == FREE_FAILURES


def test_a_right_password_still_signs_in_and_clears_the_user_count(web_app, anonymous_client):
    add_user(web_app, "bob", "viewer")
    token = csrf_token_for(anonymous_client)
    wrong = anonymous_client.post(
        "/sign-in", data={"name": "bob", "password": "not the password", "csrf_token": token}
    )
    assert wrong.status_code == 401
    from tests.conftest import sign_in

    assert sign_in(anonymous_client, "bob").status_code == 303
    with web_app.state.services.db.session() as s:
        rows = s.execute(select(SignInAttempt.succeeded).order_by(SignInAttempt.id)).all()
    assert [r[0] for r in rows] == [False, True]
