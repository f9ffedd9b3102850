"""Roles of many accounts at once (issue 17): 20 accounts with 500 roles each.

Measures, in one run:
1. the first cross-account roles list (GET /all-accounts/roles with nothing loaded, then
   "Check progress" until the list shows, on the wall clock: an AssumeRole and a ListRoles
   pagination per member account, side by side, in the background) against its
   critical path, the slowest single account's AssumeRole + ListRoles pagination, with the
   latency model of bench/latency.py (target: ratio <= 1.2);
2. warm searches across all 10,000 roles: p50/p95 server time (target p95 < 50 ms).

Accounts come from configuration (the sandbox's default account is the hub and 19 more ids);
moto makes each member's IAM backend on first use and accepts the assumed role.

    .venv/bin/python -m bench.accounts [--accounts 20] [--roles 500] [--repeat 3]
        [--moto-process]

`--moto-process` runs moto's server in a process of its own (`moto_server`) instead of in
RoleDesk's, as AWS is: its work then no longer shares RoleDesk's GIL, which shows how much of
the critical path's time is the sandbox's.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from app import migrate
from app.aws.sandbox import Sandbox
from app.services import build_services
from app.settings import Settings
from bench import latency
from bench._client import signed_in_client
from bench._setup import percentile, roles_not_loaded, sandbox_client
from bench.roles import TRUST

ROLE = "RoleDeskAccess"


def member_iam(endpoint: str, account_id: str) -> Any:
    sts = sandbox_client("sts", endpoint)
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{ROLE}", RoleSessionName="bench-setup"
    )["Credentials"]
    return boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def create_roles(iam: Any, prefix: str, count: int) -> None:
    # Sequential: moto's IAM backend is not safe for concurrent writes.
    for i in range(count):
        iam.create_role(RoleName=f"{prefix}-role-{i:04d}", AssumeRolePolicyDocument=TRUST)


def server_seconds(response: Any) -> float:
    return float(response.headers["server-timing"].split("dur=")[1]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--roles", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--moto-process", action="store_true", help="run moto in a process of its own"
    )
    latency.add_arguments(parser)
    args = parser.parse_args()

    sandbox, endpoint = start_moto(args.moto_process)
    members = [f"{100000000000 + i:012d}" for i in range(1, args.accounts)]
    started = time.perf_counter()
    create_roles(sandbox_client("iam", endpoint), "hub", args.roles)
    for i, account_id in enumerate(members):
        create_roles(member_iam(endpoint, account_id), f"a{i:02d}", args.roles)
    print(
        f"created {args.roles} roles in each of {args.accounts} accounts "
        f"in {time.perf_counter() - started:.0f} s"
    )
    configured = json.dumps([{"id": m, "name": f"member-{m[-2:]}"} for m in members])

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate.upgrade(url)
        settings = Settings(
            database_url=url, accounts_source="configuration", accounts=json.loads(configured)
        )
        services = build_services(settings, sandbox_endpoint=endpoint)
        client = signed_in_client(services)
        app: Any = client.app
        model = latency.from_args(args)
        model.attach(services.clients)  # the member accounts' clients are its children

        def cold() -> None:
            """Nothing loaded: no member credentials, no roles list in any account (in
            memory or stored for every process)."""
            app.state.account_services.forget()
            app.state.account_hub = None
            roles_not_loaded(services)

        def first_list() -> None:
            """Until the list shows: the page, then "Check progress" (the no-JavaScript
            path; each request waits on the server for the loads) while the lists load.
            Timed on the wall clock around all of it (None): the loads go on between the
            requests, so the requests' server times would leave time out."""
            response = client.get("/all-accounts/roles?q=role-0499")
            while 'id="all-roles-check"' in response.text:
                check = response.text.split('id="all-roles-check"')[0].rsplit('href="', 1)[1]
                response = client.get(html.unescape(check.split('"', 1)[0]))
            assert response.status_code == 200, response.text[:300]
            assert f"{args.accounts} of {args.accounts} accounts" in response.text

        result = model.measure(
            first_list,
            after={"ListRoles": {"AssumeRole"}},
            repeats=args.repeat,
            prepare=cold,
        )
        print(result.line(f"first list, {args.accounts} accounts x {args.roles}"))
        print(f"  critical path: {result.example.critical.describe()}")

        first_list()  # warm
        queries = [f"role-0{i:03d}" for i in range(0, 500, 7)] + ["a07-role", "zzz", "ROLE-04"]
        times = []
        for i in range(args.queries):
            for headers in ({}, {"HX-Request": "true"}):
                response = client.get(
                    f"/all-accounts/roles?q={queries[i % len(queries)]}", headers=headers
                )
                assert response.status_code == 200
                times.append(server_seconds(response) * 1000)
        print(
            f"warm search across {args.accounts * args.roles} roles: p50 "
            f"{percentile(times, 50):.1f} ms, p95 {percentile(times, 95):.1f} ms over "
            f"{len(times)} requests (target p95 < 50 ms)"
        )
        services.db.dispose()
    sandbox.stop()


class MotoProcess:
    """moto's server in a process of its own, on a free port."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        server = str(Path(sys.executable).with_name("moto_server"))
        # As app.aws.sandbox.Sandbox sets for the in-process server.
        env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        env["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        self.process = subprocess.Popen(
            [server, "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/"):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto_server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_moto(own_process: bool) -> tuple[Sandbox | MotoProcess, str]:
    if own_process:
        server = MotoProcess()
        print(f"moto in its own process at {server.endpoint_url}")
        return server, server.endpoint_url
    sandbox = Sandbox(0)
    return sandbox, sandbox.start()


if __name__ == "__main__":
    main()
