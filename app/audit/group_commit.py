"""Group commit for audit appends: concurrent appends in one process share a transaction.

On PostgreSQL every commit waits for the WAL to reach the disk, and the chain lock serialises
appends, so one entry per transaction cannot go faster than the disk can fsync (a few hundred
per second on ordinary disks). Here, while one thread (the leader) writes a batch, entries
from other threads queue up; the next batch carries all of them in one transaction and one
fsync. Every caller still returns only after its own entry is committed, so nothing is
acknowledged that is not durable. A failed batch is retried entry by entry, so one bad entry
fails only its own caller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 500


@dataclass(eq=False)
class _Pending(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None
    promoted: bool = False  # woken to lead the next batch rather than with a result


class GroupCommit(Generic[T, R]):
    def __init__(self, write_batch: Callable[[list[T]], list[R]]) -> None:
        self._write_batch = write_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending[T, R]] = []
        self._leading = False

    def submit(self, item: T) -> R:
        """Write `item` (in a batch with whatever else is waiting); return once committed."""
        pending: _Pending[T, R] = _Pending(item)
        with self._lock:
            self._queue.append(pending)
            lead = not self._leading
            self._leading = True
        while not lead:
            pending.done.wait()
            if not pending.promoted:
                break
            pending.promoted = False
            pending.done.clear()
            lead = True
        if lead:
            self._lead()
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]

    def _lead(self) -> None:
        """Write one batch (it holds this thread's own entry), then hand over or stop."""
        with self._lock:
            batch = self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
        self._write(batch)
        with self._lock:
            if not self._queue:
                self._leading = False
                return
            successor = self._queue[0]
            successor.promoted = True
        successor.done.set()

    def _write(self, batch: list[_Pending[T, R]]) -> None:
        try:
            results = self._write_batch([p.item for p in batch])
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:  # find the culprit: each entry alone, in order
                for single in batch:
                    self._write([single])
                return
        else:
            for p, result in zip(batch, results, strict=True):
                p.result = result
        for p in batch:
            p.done.set()
