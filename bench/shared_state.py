"""Several RoleDesk processes on one PostgreSQL (issue 16), with real processes.

Measures, in one run, on a fresh PostgreSQL database and the sandbox holding `--roles` roles:
1. a cold start of 4 processes at once: ListRoles calls in total with the shared state (one
   process pages through AWS, the others take its stored list) against the same 4 processes
   each holding a list of its own (the baseline, 4 pagings);
2. a 5th process started after that: ListRoles calls and time to its first roles page (the
   stored list), against one paging of ListRoles in the same run;
3. "Refresh list" on one of 4 processes: ListRoles calls in total (the others reload the
   stored list when the notice arrives);
4. change notices: 100 role changes through one process (GetRole, stored, notice), the time
   from the end of each change's run (the re-read stored, as the operations engine waits
   for) until another process (idle, listening) has applied it, p50/p99 (target p99 < 1 s).

AWS calls carry the modelled latency of bench/latency.py (--latency-ms, default 50).

    .venv/bin/python -m bench.shared_state [--roles 5000] [--changes 100]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import statistics
import time
import uuid
from typing import Any

from app import migrate
from app.aws.sandbox import Sandbox
from bench._setup import sandbox_client
from bench.latency import add_arguments
from bench.roles import TRUST, create_roles

POSTGRES_ADMIN = os.environ.get(
    "ROLEDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PAGE_SIZE = 1000  # ListRoles page size RoleDesk asks for


def _process(
    url: str,
    endpoint: str,
    delay_ms: float,
    shared: bool,
    start: Any,
    commands: Any,
    results: Any,
) -> None:
    """One RoleDesk process: its own engine, shared state, AWS clients and roles list."""
    from app.aws.clients import AwsClients
    from app.aws.iam import IamGateway
    from app.db import Database
    from app.roles.inventory import RoleInventory
    from app.shared.state import SharedState
    from bench.latency import LatencyModel

    db = Database(url)
    clients = AwsClients(region="us-east-1", endpoint_url=endpoint, sandbox=True)
    LatencyModel(delay_ms, min(5.0, delay_ms)).attach(clients)
    calls: list[str] = []
    clients.hook_every_client("before-call", lambda model, **_: calls.append(model.name))
    state = SharedState(db) if shared else None
    roles = RoleInventory(IamGateway(clients), shared=state)
    applied: dict[str, float] = {}
    if state is not None:
        state.subscribe("roles", lambda _key, item: applied.__setitem__(item or "", time.time()))
    start.wait()
    try:
        while True:
            command, arg = commands.get()
            if command == "page":
                began = time.perf_counter()
                total = roles.page().total
                took = time.perf_counter() - began
                results.put((calls.count("ListRoles"), total, took))
            elif command == "refresh":
                roles.refresh()
                results.put(calls.count("ListRoles"))
            elif command == "listroles":
                results.put(calls.count("ListRoles"))
            elif command == "change":  # RoleDesk changed role `arg`: the audited path's call
                began = time.perf_counter()
                roles.on_change("iam:CreateRole", f"arn:aws:iam::123456789012:role/{arg}")
                # The run ends once the re-read is stored (the operations engine settles the
                # roles list before it ends a run): that is when RoleDesk reports it done.
                roles.settle()
                results.put((time.time(), time.perf_counter() - began))
            elif command == "applied":
                results.put(dict(applied))
            elif command == "stop":
                break
    finally:
        db.dispose()


class Process:
    def __init__(self, url: str, endpoint: str, delay_ms: float, shared: bool) -> None:
        ctx = mp.get_context("spawn")
        self.start = ctx.Event()
        self.commands: Any = ctx.Queue()
        self.results: Any = ctx.Queue()
        self.process = ctx.Process(
            target=_process,
            args=(url, endpoint, delay_ms, shared, self.start, self.commands, self.results),
        )
        self.process.start()

    def ask(self, command: str, arg: str = "") -> Any:
        self.commands.put((command, arg))
        return self.results.get(timeout=600)

    def send(self, command: str) -> None:
        self.commands.put((command, ""))

    def stop(self) -> None:
        self.commands.put(("stop", ""))
        self.process.join(timeout=30)


def fresh_database() -> tuple[str, Any]:
    from sqlalchemy import create_engine, text

    name = f"roledesk_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"
    migrate.upgrade(url)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def cold_start(url: str, endpoint: str, delay: float, shared: bool) -> tuple[int, list[float]]:
    """4 processes ask for their first roles page at the same moment."""
    group = [Process(url, endpoint, delay, shared) for _ in range(4)]
    try:
        for p in group:
            p.start.set()
        for p in group:
            p.send("page")
        answers = [p.results.get(timeout=600) for p in group]
        return sum(a[0] for a in answers), [a[2] for a in answers]
    finally:
        for p in group:
            p.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--roles", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=100)
    add_arguments(parser)
    args = parser.parse_args()
    delay = args.latency_ms
    pages = math.ceil(args.roles / PAGE_SIZE)
    sandbox = Sandbox(0)
    endpoint = sandbox.start()
    url, drop = fresh_database()
    try:
        iam = sandbox_client("iam", endpoint)
        print(f"creating {args.roles} roles in the sandbox ...", flush=True)
        create_roles(iam, args.roles)
        print(f"modelled AWS latency {delay:g} ms per call; ListRoles pages of {PAGE_SIZE}")

        base_calls, base_times = cold_start(url, endpoint, delay, shared=False)
        shared_calls, shared_times = cold_start(url, endpoint, delay, shared=True)
        print(
            f"1. cold start, 4 processes: ListRoles calls {shared_calls} in total with the "
            f"shared state vs {base_calls} each on its own ({base_calls / shared_calls:.1f}x "
            f"fewer); first page max {max(shared_times) * 1000:.0f} ms vs "
            f"{max(base_times) * 1000:.0f} ms"
        )

        group = [Process(url, endpoint, delay, shared=True) for _ in range(4)]
        try:
            for p in group:
                p.start.set()
            for p in group:
                p.ask("page")  # warm: the stored list is fresh
            late = Process(url, endpoint, delay, shared=True)
            late.start.set()
            late_calls, late_total, late_took = late.ask("page")
            baseline = Process(url, endpoint, delay, shared=False)
            baseline.start.set()
            paging_calls, _, paging_took = baseline.ask("page")
            baseline.stop()
            print(
                f"2. a new process: first roles page ({late_total} roles) with {late_calls} "
                f"ListRoles calls in {late_took * 1000:.0f} ms (stored list), vs "
                f"{paging_took * 1000:.0f} ms paging ListRoles itself ({paging_calls} calls)"
            )
            before = sum(p.ask("listroles") for p in group)
            group[0].ask("refresh")
            for p in group[1:]:
                p.ask("page")
            after = sum(p.ask("listroles") for p in group)
            print(
                f"3. Refresh list on one of 4 processes: {after - before} ListRoles calls in "
                f"total ({pages} = one paging)"
            )

            names = [f"bench-change-{i:03d}" for i in range(args.changes)]
            done: dict[str, float] = {}
            rereads: list[float] = []
            for name in names:
                iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
                done[name], reread = group[0].ask("change", name)
                rereads.append(reread)
                time.sleep(0.02)  # changes a moment apart, as people make them
            deadline = time.monotonic() + 30
            while True:
                applied = group[1].ask("applied")
                if all(n.lower() in applied for n in names) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            lags = sorted(applied[n.lower()] - done[n] for n in names if n.lower() in applied)
            missing = len(names) - len(lags)
            p99 = lags[min(len(lags) - 1, math.ceil(0.99 * len(lags)) - 1)] if lags else math.inf
            print(
                f"4. {args.changes} changes through one process, applied by another (idle, "
                f"LISTEN): p50 {statistics.median(lags) * 1000:.1f} ms, p99 {p99 * 1000:.1f} "
                f"ms, max {lags[-1] * 1000:.1f} ms, not applied {missing} (target p99 < 1 s); "
                f"each measured from the end of its run, after the changing process's re-read "
                f"and store (p50 {statistics.median(rereads) * 1000:.1f} ms)"
            )
            late.stop()
        finally:
            for p in group:
                p.stop()
    finally:
        drop()
        sandbox.stop()


if __name__ == "__main__":
    main()
