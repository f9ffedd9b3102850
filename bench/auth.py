"""What sign-in and the per-request session check cost (issue 6).

Prints: argon2id hash/verify time at production parameters (what one sign-in costs the
server), and the latency of resolving a session cookie (the database read every request
makes) on SQLite and, when reachable, PostgreSQL.

    .venv/bin/python -m bench.auth [--postgres postgresql+psycopg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import create_engine, text

from app import migrate
from app.audit.audited import AuditContext
from app.audit.log import AuditLog
from app.auth.permissions import Role
from app.auth.sessions import SessionStore
from app.auth.users import UsersService
from app.db import Database


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(
        f"{label}: median {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms (n={len(ordered)})"
    )


def bench_argon2() -> None:
    hasher = PasswordHasher()
    stored = hasher.hash("a benchmark password")
    report("argon2id hash (t=3, m=64 MiB, p=4)", timed(lambda: hasher.hash("x" * 16), 20))
    report("argon2id verify", timed(lambda: hasher.verify(stored, "a benchmark password"), 20))


def bench_sessions(url: str, label: str) -> None:
    migrate.upgrade(url)
    db = Database(url)
    try:
        users = UsersService(db, AuditLog(db))
        user = users.add(AuditContext(actor="bench"), "bench", Role.ADMIN, "b" * 12)
        sessions = SessionStore(db)
        token = sessions.create(user).token
        for _ in range(50):  # warm the pool
            sessions.resolve(token)
        samples = timed(lambda: sessions.resolve(token), 2000)
        report(f"session resolve, {label}", samples)
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", help="admin URL; a scratch database is created and dropped")
    args = parser.parse_args()
    bench_argon2()
    with tempfile.TemporaryDirectory() as tmp:
        bench_sessions(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", "SQLite file (WAL)")
    if args.postgres:
        name = f"roledesk_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            bench_sessions(f"{args.postgres.rsplit('/', 1)[0]}/{name}", "PostgreSQL 127.0.0.1")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
