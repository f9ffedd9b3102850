"""Background runs (app.operations.background): each run on a daemon thread, idle threads
reused, `running` and `wait` by operation id, the request's context kept."""

from __future__ import annotations

import contextvars
import threading

from app.operations.background import BackgroundRuns

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_runs_report_running_until_done_and_keep_the_context() -> None:
    runs = BackgroundRuns()
    release = threading.Event()
    seen: list[tuple[str, bool]] = []

    def run() -> None:
        release.wait(5)
        seen.append((WHO.get(), threading.current_thread().daemon))

    WHO.set("alice")
    runs.start("op-1", run, "test")
    assert runs.running("op-1")
    assert not runs.wait("op-1", 0.05)
    release.set()
    assert runs.wait("op-1", 5)
    assert not runs.running("op-1")
    assert seen == [("alice", True)]
    assert runs.wait("never-started") and not runs.running("never-started")


def test_idle_threads_are_reused_and_a_crash_does_not_stop_them() -> None:
    runs = BackgroundRuns()
    threads: list[int] = []

    def crash() -> None:
        threads.append(threading.get_ident())
        raise RuntimeError("boom")

    def record() -> None:
        threads.append(threading.get_ident())

    runs.start("op-a", crash, "test")
    assert runs.wait("op-a", 5)
    for n in range(5):  # one after another: the one idle thread takes each
        runs.start(f"op-{n}", record, "test")
        assert runs.wait(f"op-{n}", 5)
    assert len(set(threads)) == 1


def test_runs_at_the_same_time_get_threads_of_their_own() -> None:
    runs = BackgroundRuns()
    both = threading.Barrier(3, timeout=5)
    for n in range(2):
        runs.start(f"op-{n}", both.wait, "test")
    both.wait()  # would time out if the second run waited for the first
    assert runs.wait("op-0", 5) and runs.wait("op-1", 5)
