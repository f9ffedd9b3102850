"""Drafts on SQLite and PostgreSQL: the compare-and-set claim lets exactly one of many
concurrent requests create the role; finish records the result; steps save and reload."""

from __future__ import annotations

import threading

import pytest

from app import migrate
from app.db import Database
from app.wizard.drafts import DraftStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request):
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    migrate.upgrade(url)
    db = Database(url)
    yield DraftStore(db)
    db.dispose()


def test_one_claim_wins_among_concurrent_requests(store):
    draft = store.create("alice")
    barrier = threading.Barrier(6)
    wins = []

    def claim(n):
        barrier.wait()
        wins.append(store.claim(draft.id, f"op-{n}"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    assert store.get(draft.id).status == "creating"
    assert not store.save_step(draft.id, "details", {"name": "late"})  # no edits while creating


def test_steps_saved_and_finish_records_result(store):
    draft = store.create("alice")
    assert store.save_step(draft.id, "trust", {"entity_type": "service"})
    assert store.save_step(draft.id, "details", {"name": "r"})
    assert store.get(draft.id).data == {
        "trust": {"entity_type": "service"},
        "details": {"name": "r"},
    }
    assert store.claim(draft.id, "op")
    store.finish(draft.id, failure={"step": "Create the role"}, summary={"cli": []})
    failed = store.get(draft.id)
    assert failed.status == "failed" and failed.failure == {"step": "Create the role"}
    assert [d.id for d in store.resumable("alice")] == [draft.id]  # a failed draft is resumable
    assert store.claim(draft.id, "op-2")
    store.finish(draft.id, role_arn="arn:aws:iam::1:role/r")
    done = store.get(draft.id)
    assert done.status == "created" and done.role_arn == "arn:aws:iam::1:role/r"
    assert store.resumable("alice") == [] and not store.claim(draft.id, "op-3")


def test_concurrent_step_saves_do_not_fail(store):
    """Two tabs saving the same draft at once: on SQLite a deferred transaction that read
    first could not take the write lock ("database is locked"); writes start IMMEDIATE."""
    draft = store.create("alice")
    barrier = threading.Barrier(6)
    results, errors = [], []

    def save(n):
        barrier.wait()
        try:
            for i in range(5):
                store.get(draft.id)
                saved = store.save_step(draft.id, "details", {"name": f"r{n}-{i}"})
                results.append(saved is not None and saved.step("details") == {"name": f"r{n}-{i}"})
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [True] * 30
