"""A page reads several inventories, each catching up with the other processes first; the
change log is queried once per request (app.web.shared_scope), not once per inventory."""

from __future__ import annotations

import threading

from app.shared.state import SharedState, request_scope


def test_the_ec2_page_reads_the_change_log_once_per_request(client, seeded):
    shared = seeded.shared
    assert shared is not None
    client.get("/instances")  # first view: loads everything
    before = shared.change_log_reads
    for page in ("/instances", "/instances?name=web", "/roles"):
        assert client.get(page).status_code == 200
        assert shared.change_log_reads == before + 1, page
        before = shared.change_log_reads


def test_outside_a_request_every_catch_up_reads_the_log(seeded):
    shared: SharedState = seeded.shared  # type: ignore[assignment]
    before = shared.change_log_reads
    shared.catch_up()
    shared.catch_up()
    assert shared.change_log_reads == before + 2


def test_a_closed_request_scope_no_longer_holds_back_a_catch_up(seeded):
    """A thread that copied a request's context and outlives it catches up again."""
    shared: SharedState = seeded.shared  # type: ignore[assignment]
    import contextvars

    with request_scope():
        shared.catch_up()
        before = shared.change_log_reads
        shared.catch_up()
        assert shared.change_log_reads == before
        copied = contextvars.copy_context()
    counted: list[int] = []

    def later() -> None:
        shared.catch_up()
        counted.append(shared.change_log_reads)

    thread = threading.Thread(target=copied.run, args=(later,))
    thread.start()
    thread.join()
    assert counted == [before + 1]
