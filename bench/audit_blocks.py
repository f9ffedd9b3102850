"""Blocks a history page reads on PostgreSQL, counted by PostgreSQL itself.

    .venv/bin/python -m bench.audit_blocks --reuse <url> --kind text [--seed N] [--pages 50]

Runs `pages` history queries of one kind (`AuditQueries.page`, the query layer of `GET
/audit`, without HTTP or the page around it) and prints, per page, the blocks PostgreSQL read
from outside its buffer cache (`blks_read`: from the operating system's cache or the disk) and
all the blocks it touched (`blks_read + blks_hit`), from `pg_stat_database` before and after,
with the query times. Block counts do not depend on the machine's speed, which times do.

For the figures of a cold database, restart PostgreSQL and drop the page cache before each run
(`/etc/init.d/postgresql restart; sync; echo 3 > /proc/sys/vm/drop_caches`). Unlike `bench.audit`
this does not verify the chain first, so the ledger is as cold as the rest: a database restarted
while RoleDesk keeps running (its chain check remembers what it verified and reads only new
entries). The database must be one `bench.audit --generate-only` made. Prints figures; nothing
is asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from sqlalchemy import create_engine, text

from app.audit.query import AuditFilters, AuditQueries
from app.db import Database
from bench.audit import ACCOUNT

KINDS = {
    "newest": lambda rng: AuditFilters(),
    "actor": lambda rng: AuditFilters(actor=f"user{rng.randint(0, 49):02d}"),
    # A role's name, as bench.audit's "text: a role's name" picks it.
    "text": lambda rng: AuditFilters(q=f"role-{int(rng.expovariate(1 / 500)) % 5000:05d}"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reuse", required=True, help="a PostgreSQL database URL")
    parser.add_argument("--kind", choices=sorted(KINDS), default="text")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pages", type=int, default=50)
    args = parser.parse_args()
    name = args.reuse.rsplit("/", 1)[1]
    admin = create_engine(args.reuse.rsplit("/", 1)[0] + "/postgres")
    db = Database(args.reuse)
    queries = AuditQueries(db, ACCOUNT)

    def flushed_counts() -> tuple[int, int]:
        # A backend sends its counts at most once a second; make this process's go now.
        with db.engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
        time.sleep(1.5)
        with admin.connect() as conn:
            read, hit = conn.execute(
                text("SELECT blks_read, blks_hit FROM pg_stat_database WHERE datname = :n"),
                {"n": name},
            ).one()
        return int(read), int(hit)

    queries.page(AuditFilters(q="no-such-word"))  # the connection and its catalog caches
    before = flushed_counts()
    rng = random.Random(args.seed)
    times = []
    for _ in range(args.pages):
        started = time.perf_counter()
        queries.page(KINDS[args.kind](rng))
        times.append((time.perf_counter() - started) * 1000)
    after = flushed_counts()
    read, hit = after[0] - before[0], after[1] - before[1]
    times.sort()
    print(
        f"{args.kind}: {args.pages} pages, per page {read / args.pages:.0f} blocks read "
        f"({(read + hit) / args.pages:.0f} touched); query p50 {statistics.median(times):.1f} ms, "
        f"p95 {times[int(len(times) * 0.95) - 1]:.1f} ms"
    )
    db.dispose()
    admin.dispose()


if __name__ == "__main__":
    main()
