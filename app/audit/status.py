"""The chain status shown on the history page: "verified up to sequence N, checked at T".

Re-verifying a million entries on every page view would take seconds, so the monitor keeps
the last verified (seq, hash) in memory and checks only the entries appended since: a small
backlog is checked during the request, a large one (the first view after start, say) in a
background thread while the page shows how far it has got. Entries verified once are not
re-read, so an edit to an old entry shows here only after a restart or a full
`roledesk audit verify`, which the page says.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from app.audit.verify import GENESIS, Anchor, Problem, check_entries, stream_entries
from app.db import Database

log = logging.getLogger(__name__)

INLINE_BACKLOG = 2000  # entries a page view may verify itself before handing off


@dataclass(frozen=True)
class ChainStatus:
    verified: Anchor
    head_seq: int
    checked_at: datetime | None
    problem: Problem | None
    running: bool

    @property
    def complete(self) -> bool:
        return self.problem is None and self.verified.seq >= self.head_seq


class ChainMonitor:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()  # guards the fields below
        self._run_lock = threading.Lock()  # one verifier at a time
        self._verified = GENESIS
        self._checked_at: datetime | None = None
        self._problem: Problem | None = None
        self._thread: threading.Thread | None = None

    def status(self, head_seq: int) -> ChainStatus:
        """Verify what is new (inline if little, else in the background) and report."""
        backlog = head_seq - self._verified.seq
        if self._problem is None and backlog > 0:
            if backlog <= INLINE_BACKLOG:
                self.catch_up()
            else:
                self._start_background()
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            return ChainStatus(self._verified, head_seq, self._checked_at, self._problem, running)

    def catch_up(self) -> None:
        """Verify every entry after the last verified one (blocks until done)."""
        with self._run_lock:
            if self._problem is not None:
                return
            result = check_entries(stream_entries(self._db, self._verified.seq), self._verified)
            with self._lock:
                self._verified = result.head
                self._problem = result.problem
                self._checked_at = datetime.now(UTC)
            if result.problem is not None:
                log.error("audit chain broken at %s", result.problem)

    def _start_background(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._run_safely, name="audit-chain-verify", daemon=True
            )
            self._thread.start()

    def _run_safely(self) -> None:
        try:
            self.catch_up()
        except Exception:  # the page shows the last good status; the log says why
            log.exception("verifying the audit chain failed")
