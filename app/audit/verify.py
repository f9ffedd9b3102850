"""Verifying the hash chain: every entry re-hashed from its stored columns, in order.

What a chain alone can show: an edited field (the entry's hash no longer matches), a deleted
entry (a gap in the sequence numbers, or a `prev_hash` that no longer links), an inserted one.
What it cannot show on its own: the newest entries cut off, or the whole chain rewritten from
some point on with new hashes (renumbered and recomputed). Those need an anchor kept outside
the database: a signed checkpoint (app.audit.checkpoint) of an earlier head.

Rows are streamed in seq order (`yield_per`), so a million entries never sit in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from app.audit.chain import GENESIS_HASH, HASHED_FIELDS, entry_hash
from app.db import Database
from app.models import AuditEvent

BATCH = 2000
COLUMNS = [getattr(AuditEvent, name) for name in (*HASHED_FIELDS, "prev_hash", "hash")]


@dataclass(frozen=True)
class Anchor:
    """A trusted (seq, hash) pair: seq 0 and the genesis hash, or a checkpoint's head."""

    seq: int
    hash: str


GENESIS = Anchor(0, GENESIS_HASH)


@dataclass(frozen=True)
class Problem:
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"sequence {self.seq}: {self.reason}"


@dataclass(frozen=True)
class VerifyResult:
    """How far the chain checked out, and the first problem if any."""

    checked: int
    head: Anchor
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def stream_entries(db: Database, after_seq: int = 0) -> Iterator[dict[str, Any]]:
    """The ledger's entries after `after_seq`, in seq order, as column dicts."""
    query = select(*COLUMNS).where(AuditEvent.seq > after_seq).order_by(AuditEvent.seq)
    with db.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for row in result:
            yield dict(row._mapping)


def check_entries(entries: Iterable[dict[str, Any]], start: Anchor = GENESIS) -> VerifyResult:
    """Walk `entries` (in seq order) from the trusted `start`; stop at the first problem."""
    seq, prev = start.seq, start.hash
    checked = 0
    for entry in entries:
        problem = _problem(entry, seq + 1, prev)
        if problem is not None:
            return VerifyResult(checked, Anchor(seq, prev), problem)
        seq, prev = entry["seq"], entry["hash"]
        checked += 1
    return VerifyResult(checked, Anchor(seq, prev))


def _problem(entry: dict[str, Any], expected_seq: int, prev: str) -> Problem | None:
    if entry["seq"] != expected_seq:
        missing = (
            f"{expected_seq}"
            if entry["seq"] == expected_seq + 1
            else (f"{expected_seq} to {entry['seq'] - 1}")
        )
        if entry["seq"] < expected_seq:
            return Problem(entry["seq"], "sequence number out of order (renumbered?)")
        return Problem(expected_seq, f"missing: entries {missing} were removed")
    if entry["prev_hash"] != prev:
        return Problem(expected_seq, "prev_hash does not link to the entry before it")
    if entry_hash(prev, entry) != entry["hash"]:
        return Problem(expected_seq, "contents do not match the stored hash (edited)")
    return None


def verify_database(
    db: Database, start: Anchor = GENESIS, anchors: Iterable[Anchor] = ()
) -> VerifyResult:
    """Verify the chain from `start` to the head, and that it passes through every anchor.

    An anchor (from a signed checkpoint) at seq N must match the entry stored at N; if the
    chain ends before N, the entries after the new head were cut off.
    """
    pending = sorted((a for a in anchors if a.seq > start.seq), key=lambda a: a.seq)
    by_seq = {a.seq: a for a in pending}

    def checked_against_anchors() -> Iterator[dict[str, Any]]:
        for entry in stream_entries(db, start.seq):
            anchor = by_seq.get(entry["seq"])
            if anchor is not None and anchor.hash != entry["hash"]:
                raise _AnchorMismatch(entry["seq"])
            yield entry

    try:
        result = check_entries(checked_against_anchors(), start)
    except _AnchorMismatch as exc:
        return VerifyResult(
            exc.seq - start.seq - 1,
            Anchor(exc.seq - 1, ""),
            Problem(
                exc.seq,
                "hash differs from the signed checkpoint (rewritten or renumbered chain)",
            ),
        )
    if result.ok and pending and pending[-1].seq > result.head.seq:
        cut = result.head.seq + 1
        return VerifyResult(
            result.checked,
            result.head,
            Problem(
                cut,
                f"missing: the chain ends at {result.head.seq} but a signed "
                f"checkpoint covers up to {pending[-1].seq} (entries cut off)",
            ),
        )
    return result


class _AnchorMismatch(Exception):
    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.seq = seq
