"""Roles list with 5,000 roles in the sandbox (issue 2).

Measures, in one run:
1. first load: GET /roles with an empty roles cache, against the raw boto3 ListRoles
   pagination it needs (the baseline), alternating the two, ratio of medians (target <= 1.2);
2. after that: paging, sorting and search over all roles, p50/p95 server time (target < 50 ms);
3. the htmx "last activity" fragment for one page of 25 rows (GetRole per row), for the record.

Server time is the app's own Server-Timing header (time inside RoleDesk, ASGI in-process).

    .venv/bin/python -m bench.roles [--roles 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from app import migrate
from app.aws.sandbox import Sandbox
from app.services import build_services
from app.settings import Settings
from bench._client import signed_in_client
from bench._setup import roles_not_loaded, sandbox_client

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def server_ms(response) -> float:
    return float(response.headers["server-timing"].split("dur=")[1])


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


def create_roles(iam, count: int) -> None:
    # Sequential: moto's IAM backend is not safe for concurrent writes ("dictionary changed
    # size during iteration" under a thread pool).
    for i in range(count):
        iam.create_role(
            RoleName=f"bench-role-{i:05d}",
            Path=f"/team{i % 7}/",
            AssumeRolePolicyDocument=TRUST,
            Description=f"bench role {i}",
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--roles", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()

    sandbox = Sandbox(0)
    endpoint = sandbox.start()
    iam = sandbox_client("iam", endpoint)
    started = time.perf_counter()
    create_roles(iam, args.roles)
    print(f"created {args.roles} roles in {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate.upgrade(url)
        services = build_services(Settings(database_url=url), sandbox_endpoint=endpoint)
        client = signed_in_client(services)

        baseline, first = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            count = sum(
                len(p["Roles"])
                for p in iam.get_paginator("list_roles").paginate(
                    PaginationConfig={"PageSize": 1000}
                )
            )
            baseline.append((time.perf_counter() - t) * 1000)
            assert count == args.roles
            roles_not_loaded(services)
            response = client.get("/roles")
            assert response.status_code == 200
            first.append(server_ms(response))
        ratio = statistics.median(first) / statistics.median(baseline)
        print(
            f"first load: RoleDesk median {statistics.median(first):.0f} ms, raw boto3 "
            f"ListRoles pagination median {statistics.median(baseline):.0f} ms, "
            f"ratio {ratio:.2f} (target <= 1.2)"
        )

        pages = [f"/roles?page={p}" for p in range(1, 200)]
        sorts = [
            "/roles?sort=created&order=desc",
            "/roles?sort=name&order=desc",
            "/roles?sort=created&order=asc&page=50",
        ]
        searches = [f"/roles?q=role-0{i:02d}" for i in range(50)] + [
            "/roles?q=bench",
            "/roles?q=zzz",
        ]
        for label, urls in (("paging", pages), ("sorting", sorts), ("search", searches)):
            times = []
            for i in range(args.queries):
                url_ = urls[i % len(urls)]
                for headers in ({}, {"HX-Request": "true"}):
                    response = client.get(url_, headers=headers)
                    assert response.status_code == 200
                    times.append(server_ms(response))
            print(
                f"{label}: p50 {statistics.median(times):.1f} ms, p95 {p95(times):.1f} ms "
                f"over {len(times)} requests (target < 50 ms)"
            )

        first = max(0, min(1000, args.roles - 25))  # 25 roles that exist, whatever --roles
        names = "&".join(f"name=bench-role-{i:05d}" for i in range(first, first + 25))
        response = client.get(f"/roles/last-activity?{names}", headers={"HX-Request": "true"})
        print(
            f"last-activity fragment, 25 roles (25 GetRole calls, 8 in parallel): "
            f"{server_ms(response):.0f} ms"
        )
        services.db.dispose()
    sandbox.stop()


if __name__ == "__main__":
    main()
