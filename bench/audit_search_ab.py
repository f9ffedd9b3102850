"""Audit text search, indexed (PostgreSQL's pg_trgm index, migration 0006) against the
windowed search it replaced, alternating on one database so both see the same machine load:
`AuditQueries.page` time (its queries and row building; no page rendering).

    .venv/bin/python -m bench.audit_search_ab postgresql+psycopg://.../roledesk_bench_... [30]

Use a database kept by `BENCH_KEEP_DB=1 .venv/bin/python -m bench.audit --db postgresql`.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from app.audit.query import AuditFilters, AuditQueries
from app.db import Database


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[round(0.95 * (len(ordered) - 1))]


def main() -> None:
    url = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    db = Database(url)
    indexed, windowed = AuditQueries(db), AuditQueries(db)
    windowed._indexed_search = False  # the path before migration 0006 (bench only)
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
    }
    for name, make in terms.items():
        times: dict[str, list[float]] = {"indexed": [], "windowed": []}
        rows: dict[str, int] = {}
        for _ in range(repeats):
            filters = AuditFilters(**make())
            for label, queries in (("indexed", indexed), ("windowed", windowed)):
                started = time.perf_counter()
                rows[label] = len(queries.page(filters).rows)
                times[label].append((time.perf_counter() - started) * 1000)
        print(
            f"{name:24s}"
            + " | ".join(
                f"{label} p50 {statistics.median(t):6.1f} p95 {p95(t):6.1f} ms ({rows[label]} rows)"
                for label, t in times.items()
            ),
            flush=True,
        )
    db.dispose()


if __name__ == "__main__":
    main()
