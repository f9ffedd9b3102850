"""Access review with 5,000 roles in the sandbox (issue 14).

Measures, in one run:
1. the full account scan's AWS reads (GetAccountAuthorizationDetails pages, then GetPolicy and
   GetPolicyVersion once per AWS managed policy the roles hold) against the same calls made
   with plain boto3 (the baseline), alternating the two; ratio of medians (target <= 1.3);
2. the policy checks over every role, reported separately;
3. the review page warm, filtered and sorted: p50/p95 server time (target p95 < 50 ms).

Server time is the app's own Server-Timing header (time inside RoleDesk, ASGI in-process).

    .venv/bin/python -m bench.access_review [--roles 5000] [--repeat 5] [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from app import migrate
from app.aws.sandbox import SANDBOX_ACCOUNT_ID, Sandbox
from app.policy import role_review
from app.services import build_services
from app.settings import Settings
from bench._client import signed_in_client
from bench._setup import sandbox_client

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
PARTNER_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
AWS_MANAGED = [
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    "arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess",
    "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
    "arn:aws:iam::aws:policy/AdministratorAccess",
]


def server_ms(response: Any) -> float:
    return float(response.headers["server-timing"].split("dur=")[1])


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


def inline(i: int) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["sqs:SendMessage"],
                    "Resource": f"arn:aws:sqs:us-east-1:123456789012:queue-{i % 50}",
                }
            ],
        }
    )


def create_roles(count: int) -> None:
    """Roles of a realistic mix: one AWS managed policy each (1 in 50 AdministratorAccess),
    an inline policy on a third, another account's trust on 1 in 100.

    Made in moto's in-process backend directly (set-up only, not measured): through its HTTP
    API the ~12,000 calls took half an hour on the shared benchmark machine."""
    from moto.iam.models import iam_backends

    backend = iam_backends[SANDBOX_ACCOUNT_ID]["global"]
    for i in range(count):
        name = f"bench-role-{i:05d}"
        backend.create_role(
            role_name=name,
            assume_role_policy_document=PARTNER_TRUST if i % 100 == 0 else TRUST,
            path=f"/team{i % 7}/",
            permissions_boundary=None,
            description="",
            tags=[],
            max_session_duration=None,
        )
        arn = AWS_MANAGED[4] if i % 50 == 0 else AWS_MANAGED[i % 4]
        backend.attach_role_policy(arn, name)
        if i % 3 == 0:
            backend.put_role_policy(name, "send", inline(i))


def boto3_scan(iam: Any) -> int:
    """The scan's AWS reads with plain boto3: the same pages, then each AWS managed policy the
    roles hold (GetPolicy for its default version, GetPolicyVersion for its document)."""
    roles, arns, local = 0, set(), set()
    paginator = iam.get_paginator("get_account_authorization_details")
    for page in paginator.paginate(
        Filter=["Role", "LocalManagedPolicy"], PaginationConfig={"PageSize": 1000}
    ):
        for role in page["RoleDetailList"]:
            roles += 1
            arns.update(p["PolicyArn"] for p in role.get("AttachedManagedPolicies", []))
            if "PermissionsBoundary" in role:
                arns.add(role["PermissionsBoundary"]["PermissionsBoundaryArn"])
        local.update(p["Arn"] for p in page.get("Policies", []))
    for arn in sorted(arns - local):
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        iam.get_policy_version(PolicyArn=arn, VersionId=version)
    return roles


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--roles", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()

    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    sandbox = Sandbox(0)
    endpoint = sandbox.start()
    iam = sandbox_client("iam", endpoint)
    iam.list_roles()  # moto makes the account's IAM backend (and its AWS managed policies)
    started = time.perf_counter()
    create_roles(args.roles)
    print(f"created {args.roles} roles in {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        migrate.upgrade(url)
        services = build_services(Settings(database_url=url), sandbox_endpoint=endpoint)
        scan = services.access_scan
        baseline, aws, checks = [], [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            assert boto3_scan(iam) == args.roles
            baseline.append(time.perf_counter() - t)
            # Every run reads the managed documents again, as the baseline does.
            role_review._documents.clear()
            result = scan.run_now()
            assert len(result.roles) == args.roles
            aws.append(scan.progress.aws_seconds)
            checks.append(scan.progress.checks_seconds)
        ratio = statistics.median(aws) / statistics.median(baseline)
        print(
            f"scan AWS reads: RoleDesk median {statistics.median(aws) * 1000:.0f} ms, boto3 "
            f"same calls median {statistics.median(baseline) * 1000:.0f} ms, ratio {ratio:.2f} "
            "(target <= 1.3)"
        )
        print(
            f"policy checks over {args.roles} roles: median {statistics.median(checks):.2f} s "
            f"(first run {checks[0]:.2f} s, cloudsplaining cold)"
        )

        # Another process (issue 16): it reads the stored scan from the database, not AWS.
        other = build_services(Settings(database_url=url), sandbox_endpoint=endpoint)
        t = time.perf_counter()
        adopted = other.access_scan.result
        took = time.perf_counter() - t
        assert adopted is not None
        assert len(adopted.roles) == args.roles
        print(
            f"another process adopts the stored scan of {args.roles} roles in "
            f"{took * 1000:.0f} ms (no AWS call)"
        )
        other.db.dispose()

        client = signed_in_client(services)
        urls = [
            "/access-review",
            "/access-review?kind=unused&sort=created&order=desc",
            "/access-review?kind=admin&sort=name&order=desc",
            "/access-review?kind=trust",
            "/access-review?kind=inline&sort=findings&order=desc",
            "/access-review?review=never&sort=due",
            "/access-review?q=role-04&sort=last_used",
            "/access-review?page=150",
        ]
        for u in urls:  # warm
            assert client.get(u).status_code == 200
        times, wall = [], []
        for i in range(args.queries):
            for headers in ({}, {"HX-Request": "true"}):
                t = time.perf_counter()
                response = client.get(urls[i % len(urls)], headers=headers)
                wall.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200
                times.append(server_ms(response))
        print(
            f"review page, filtered and sorted: server time (Server-Timing, inside RoleDesk) "
            f"p50 {statistics.median(times):.1f} ms, p95 {p95(times):.1f} ms over {len(times)} "
            f"requests (target p95 < 50 ms); wall time in the test client p50 "
            f"{statistics.median(wall):.1f} ms, p95 {p95(wall):.1f} ms"
        )
        services.db.dispose()
    sandbox.stop()
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
