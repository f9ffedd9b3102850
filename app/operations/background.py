"""Runs in background threads of this process, by operation id, so a page can ask whether a
run is still going here (a run in another worker process is judged from the ledger)."""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class BackgroundRuns:
    """Each run on a daemon thread (a process that stops does not wait for its runs: they
    are settled at the next start). Idle threads are kept and reused: starting a thread
    for every run cost about 0.5-1 ms of the Create request (issue 13)."""

    def __init__(self) -> None:
        self._done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], threading.Event]] = (
            queue.SimpleQueue()
        )
        self._idle = 0  # threads waiting for a job

    def start(self, operation_id: str, run: Callable[[], object], name: str) -> None:
        # The run keeps the request's context: a member account's calls go out as the
        # RoleDesk user who started it (app.accounts.context.acting_user).
        context = contextvars.copy_context()
        done = threading.Event()
        with self._lock:
            self._done[operation_id] = done
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # taken by the job below
        self._jobs.put((lambda: context.run(run), done))
        if spawn:
            # Named for the kind of run that started it; it then takes any kind.
            threading.Thread(target=self._work, name=f"run-{name}", daemon=True).start()

    def _work(self) -> None:
        while True:
            job, done = self._jobs.get()
            try:
                job()
            except Exception:  # a run's own failures are its owner's; this is a crash
                log.exception("background run crashed")
            finally:
                with self._lock:  # free before its run is seen done: a next start reuses it
                    self._idle += 1
                done.set()

    def running(self, operation_id: str) -> bool:
        with self._lock:
            done = self._done.get(operation_id)
        return done is not None and not done.is_set()

    def wait(self, operation_id: str, timeout: float = 30) -> bool:
        """Wait for the run; True when it has ended (or was never started here)."""
        with self._lock:
            done = self._done.get(operation_id)
        if done is not None:
            return done.wait(timeout)
        return True
