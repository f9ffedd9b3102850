"""Audit text search on PostgreSQL: the word index (migration 0009_search_words) against the
trigram index alone (0006), alternating on one database so both see the same machine load:
`AuditQueries.page` time (its queries and row building; no page rendering).

    .venv/bin/python -m bench.audit_search_ab postgresql+psycopg://.../roledesk_bench_... [30]

Use a database kept by `.venv/bin/python -m bench.audit --db postgresql --generate-only`
(upgraded to 0011). Each variant may also set how many events the walk first looks through
(`TEXT_WALK_ROWS`) and the first range of seqs a word search asks (`NEWEST_SPAN`; a span
longer than the history is one query over all of it, the search before 0011), and how a
word search sizes its further ranges: from the matches found so far (since 2026-12-01), or
each 4 times the one before (`fixed_growth`, as the code was before). The variants take
turns in a rotating order, as the first to meet a term pays for reading its blocks.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from app.audit import query as audit_query
from app.audit.query import AuditFilters, AuditQueries
from app.db import Database

ALL_AT_ONCE = 1 << 62
SIZED = audit_query._next_span


def fixed_growth(span: int, searched: int, found: int, wanted: int) -> int:
    """A word search's further ranges as they were until 2026-12-01: each 4 times the last."""
    return span * 4


# label: (word index used, events the walk first looks through, a word search's first range,
# how it goes on from there)
VARIANTS = {
    "trigram (0006)": (False, 5_000, ALL_AT_ONCE, SIZED),
    "words, one query (0009)": (True, 2_000, ALL_AT_ONCE, SIZED),
    "words, ranges x4 (0011)": (True, 2_000, 131_072, fixed_growth),
    "words, ranges sized (now)": (True, 2_000, audit_query.NEWEST_SPAN, SIZED),
}


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[round(0.95 * (len(ordered) - 1))]


def main() -> None:
    url = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    db = Database(url)
    rng = random.Random(3)
    terms: dict[str, Callable[[], dict[str, Any]]] = {
        "common phrase": lambda: {"q": "cannot be found"},
        "a role's name": lambda: {"q": f"role-{int(rng.expovariate(1 / 500)) % 5000:05d}"},
        "rare (6 hex digits)": lambda: {"q": rng.randbytes(3).hex()},
        "matches nothing": lambda: {"q": f"no-such-term-{rng.randint(0, 9999)}"},
        "text + actor + failed": lambda: {
            "q": "cannot be found",
            "actor": f"user{rng.randint(0, 49):02d}",
            "outcome": "failed",
        },
        "2 characters (window)": lambda: {"q": f"r{rng.randint(0, 9)}"},
    }
    queries = AuditQueries(db)
    for name, make in terms.items():
        times: dict[str, list[float]] = {label: [] for label in VARIANTS}
        rows: dict[str, int] = {}
        labels = list(VARIANTS)
        for turn in range(repeats):
            filters = AuditFilters(**make())
            for label in labels[turn % len(labels) :] + labels[: turn % len(labels)]:
                words, walk, span, next_span = VARIANTS[label]
                queries._word_index = words  # bench only: the path before 0009
                audit_query.TEXT_WALK_ROWS = walk
                audit_query.NEWEST_SPAN = span
                audit_query._next_span = next_span
                started = time.perf_counter()
                rows[label] = len(queries.page(filters).rows)
                times[label].append((time.perf_counter() - started) * 1000)
        print(f"{name} ({repeats} each)", flush=True)
        for label, t in times.items():
            print(
                f"    {label:28s} p50 {statistics.median(t):6.1f}  p95 {p95(t):6.1f} ms"
                f"  ({rows[label]} rows, last)",
                flush=True,
            )
    db.dispose()


if __name__ == "__main__":
    main()
