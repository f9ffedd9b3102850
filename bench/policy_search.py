"""Policy search in step 2 over all managed policies: p95 server time (target < 20 ms).

Two figures: the in-memory search alone (PolicyIndex.search), and the whole htmx request for
the results fragment through the ASGI app (routing, draft lookup, search, rendering), timed
around the in-process call. Run: .venv/bin/python bench/policy_search.py
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._setup import percentile, running_app

QUERIES = [
    "",
    "s3",
    "ReadOnly",
    "AmazonEC2",
    "lambda",
    "iam",
    "x",
    "Access",
    "ssm",
    "zzz",
    "Admin",
    "cloudwatch",
    "ec2full",
    "Amazon",
    "role",
]
KINDS = ["all", "aws", "job", "customer"]


def main(rounds: int = 400) -> None:
    rng = random.Random(3)
    with running_app() as (_services, client, token):
        response = client.post("/create-role", data={"csrf_token": token}, follow_redirects=False)
        draft = response.headers["location"].split("/")[2]
        wizard = client.app.app.state.wizard
        index = wizard.policies
        index.search("")  # loads the policies once (ListPolicies, all pages)
        total = index.search("").total
        search_times, request_times = [], []
        for _ in range(rounds):
            q, kind = rng.choice(QUERIES), rng.choice(KINDS)
            started = time.perf_counter()
            index.search(q, kind, 1)
            search_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = client.get(
                f"/create-role/{draft}/permissions",
                params={"q": q, "kind": kind},
                headers={"HX-Request": "true"},
            )
            request_times.append(time.perf_counter() - started)
            assert response.status_code == 200
        ms = 1000
        print(f"managed policies indexed: {total}")
        print(
            f"search only   p50 {percentile(search_times, 50) * ms:.2f} ms  "
            f"p95 {percentile(search_times, 95) * ms:.2f} ms  ({rounds} searches)"
        )
        print(
            f"htmx request  p50 {percentile(request_times, 50) * ms:.2f} ms  "
            f"p95 {percentile(request_times, 95) * ms:.2f} ms  (target p95 < 20 ms)"
        )


if __name__ == "__main__":
    main()
