"""Benchmark: the EC2 instances page with 1,000 instances in a sandbox (issue 4).

Target: the page's server time is at most 1.2 times the DescribeInstances plus
DescribeIamInstanceProfileAssociations calls it needs, measured in the same run.

Run: .venv/bin/python -m bench.instances [--instances 1000] [--rounds 7]
It starts its own moto server and SQLite file; nothing outside a temp directory is touched.
"""

from __future__ import annotations

import argparse
import statistics
import time

import boto3

from bench._client import signed_in_client
from bench._setup import seeded_services

REGION = "us-east-1"


def fill(endpoint: str, count: int) -> None:
    """`count` instances (in batches), about half of them with an instance profile."""
    ec2 = boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    made: list[str] = []
    for batch in range(0, count, 100):
        size = min(100, count - batch)
        raw = ec2.run_instances(
            ImageId="ami-0c02fb55956c7d316",
            InstanceType="t3.micro",
            MinCount=size,
            MaxCount=size,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"bench-{batch}"}]}
            ],
        )
        made.extend(i["InstanceId"] for i in raw["Instances"])
    profiles = ["web-app-ec2", "batch-worker-ec2", "reporting-ec2"]
    for n, iid in enumerate(made[::2]):
        ec2.associate_iam_instance_profile(
            InstanceId=iid, IamInstanceProfile={"Name": profiles[n % len(profiles)]}
        )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    with seeded_services() as services:
        assert services.sandbox_endpoint is not None
        fill(services.sandbox_endpoint, args.instances)
        ec2 = services.ec2(REGION)
        total = len(ec2.list_instances())
        associations = len(ec2.list_associations())
        print(f"instances: {total}, associations: {associations}")

        def calls() -> None:
            ec2.list_instances()
            ec2.list_associations()

        with signed_in_client(services) as client:
            pages = {
                "page 1": "/instances",
                "role filter": "/instances?role=web-app-ec2",
                "htmx page 10": "/instances?page=10",
            }
            for path in pages.values():  # warm up: roles list, profiles, regions, templates
                assert client.get(path).status_code == 200
            results: dict[str, list[float]] = {"calls": [], **{k: [] for k in pages}}
            for _ in range(args.rounds):  # interleaved so drift hits both sides alike
                results["calls"].append(timed(calls))
                for label, path in pages.items():
                    headers = {"HX-Request": "true"} if label.startswith("htmx") else {}
                    results[label].append(timed(lambda p=path, h=headers: client.get(p, headers=h)))

    base = statistics.median(results["calls"])
    print(
        f"DescribeInstances + DescribeIamInstanceProfileAssociations: median {base * 1000:.0f} ms"
    )
    for label in pages:
        median = statistics.median(results[label])
        print(f"GET {pages[label]:<32} median {median * 1000:.0f} ms  ratio {median / base:.2f}")
    worst = max(statistics.median(results[k]) for k in pages) / base
    print(f"worst ratio {worst:.2f} (target <= 1.2): {'PASS' if worst <= 1.2 else 'FAIL'}")


if __name__ == "__main__":
    main()
