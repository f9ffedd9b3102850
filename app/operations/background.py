"""Runs in background threads of this process, by operation id, so a page can ask whether a
run is still going here (a run in another worker process is judged from the ledger)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable


class BackgroundRuns:
    def __init__(self) -> None:
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, operation_id: str, run: Callable[[], object], name: str) -> None:
        # The run keeps the request's context: a member account's calls go out as the
        # RoleDesk user who started it (app.accounts.context.acting_user).
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(run,), name=f"{name}-{operation_id[:8]}", daemon=True
        )
        with self._lock:
            self._threads[operation_id] = thread
        thread.start()

    def running(self, operation_id: str) -> bool:
        with self._lock:
            thread = self._threads.get(operation_id)
        return thread is not None and thread.is_alive()

    def wait(self, operation_id: str, timeout: float = 30) -> bool:
        """Wait for the run; True when it has ended (or was never started here)."""
        with self._lock:
            thread = self._threads.get(operation_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True
