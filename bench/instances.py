"""Benchmark: the EC2 instances page with 1,000 instances (issues 4 and 15), in the sandbox and
with modelled real-AWS latency (bench/latency.py).

Targets (issue 15): warm (the list held in memory), p95 server time under 50 ms for paging,
filtering and search; cold (the list not yet loaded), at most 1.2 times the two Describe calls
it needs (DescribeInstances and DescribeIamInstanceProfileAssociations, side by side: the
critical path is the longer of the two listings, each a chain of pages).

Run: .venv/bin/python -m bench.instances [--instances 1000] [--rounds 7] [--views 60]
        [--latency-ms 50] [--jitter-ms 5]
It starts its own moto server and SQLite file; nothing outside a temp directory is touched.
Server time is RoleDesk's own Server-Timing header (the app called in process through ASGI).
"""

from __future__ import annotations

import argparse
import random
from concurrent.futures import ThreadPoolExecutor

from bench import latency
from bench._client import signed_in_client
from bench._setup import instances_not_loaded, sandbox_client, seeded_services

REGION = "us-east-1"


def fill(endpoint: str, count: int) -> None:
    """`count` instances (in batches), about half of them with an instance profile."""
    ec2 = sandbox_client("ec2", endpoint)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7, help="cold views (each mode)")
    parser.add_argument("--views", type=int, default=60, help="warm views per scenario")
    latency.add_arguments(parser)
    args = parser.parse_args()
    model = latency.from_args(args)
    rng = random.Random(4)

    with seeded_services() as services:
        assert services.sandbox_endpoint is not None
        fill(services.sandbox_endpoint, args.instances)
        model.attach(services.clients)
        ec2 = services.ec2(REGION)
        with model.switched(False):
            total, associations = len(ec2.list_instances()), len(ec2.list_associations())
        print(f"instances: {total}, associations: {associations}")

        def describe_calls() -> None:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda f: f(), [ec2.list_instances, ec2.list_associations]))

        with signed_in_client(services) as client:

            def view(path: str, htmx: bool = False) -> float:
                headers = {"HX-Request": "true"} if htmx else {}
                response = client.get(path, headers=headers)
                assert response.status_code == 200, (path, response.status_code)
                assert "instance-rows" in response.text or htmx
                return float(response.headers["server-timing"].split("dur=")[1]) / 1000

            view("/instances")  # warm-up: roles list, profiles, regions, templates
            cold = model.measure(
                lambda: view("/instances"),
                repeats=args.rounds,
                prepare=lambda: instances_not_loaded(services),
            )
            calls = model.measure(describe_calls, repeats=args.rounds)
            view("/instances")
            pages = max(1, (total + 49) // 50)
            warm = {
                "page flip (full page)": lambda: f"/instances?page={rng.randint(1, pages)}",
                "page flip (htmx)": lambda: f"/instances?page={rng.randint(1, pages)}",
                "role filter": lambda: (
                    f"/instances?role={rng.choice(['web-app-ec2', 'batch-worker-ec2', '(none)'])}"
                    f"&page={rng.randint(1, 4)}"
                ),
                "state filter": lambda: "/instances?state=running",
                "search by name or id": lambda: (
                    f"/instances?name=bench-{rng.randrange(0, 1000, 100)}"
                ),
                "search, no match": lambda: f"/instances?name=nothing-{rng.randint(0, 999)}",
            }
            results = {
                label: model.measure(
                    lambda url=url, htmx="htmx" in label: view(url(), htmx), repeats=args.views
                )
                for label, url in warm.items()
            }

    print()
    print(cold.line("cold view (list not loaded)"))
    print(calls.line("the two Describe calls alone, side by side"))
    print(f"  critical path: {cold.example.critical.describe()}")
    for modelled in (False, True):
        mode = "modelled" if modelled else "sandbox"
        ratio = cold.ms(modelled) / calls.ms(modelled)
        print(f"  cold view / the two calls ({mode}): {ratio:.2f} (target <= 1.2)")
    print()
    every: list[float] = []
    for label, result in results.items():
        print(
            f"warm {label:<28} p50 {result.ms(False):5.1f} ms  p95 "
            f"{result.percentile_ms(95, False):5.1f} ms (sandbox)  "
            f"p95 {result.percentile_ms(95, True):5.1f} ms (modelled), AWS calls "
            f"{result.example.calls}"
        )
        every += [r.seconds * 1000 for r in result.sandbox + result.modelled]
    every.sort()
    p95 = every[min(len(every) - 1, round(0.95 * (len(every) - 1)))]
    print(f"warm, all scenarios and both modes: p95 {p95:.1f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
