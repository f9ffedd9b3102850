"""Policy analysis (app.policy, issue 10): p95 for one typical policy in process (target
< 10 ms), the whole AWS managed-policy corpus (1,582 policies, target < 30 s), and the live
check request's server time (target p95 < 30 ms).

The live check's server time is read from RoleDesk's own `Server-Timing: app;dur=` header. On
real AWS the live check also asks IAM Access Analyzer once per distinct text (cached), which
adds one ValidatePolicy round trip (modelled at 50-300 ms) to the first check of each text.
Run: .venv/bin/python bench/policy_checks.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moto.iam.aws_managed_policies import aws_managed_policies_data

from app.policy import PolicyKind, analyse
from app.policy.risk import deep_scan
from bench._setup import percentile, running_app

GITHUB = "token.actions.githubusercontent.com"
TYPICAL_IDENTITY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadReports",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"],
            },
            {
                "Sid": "Orders",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
                "Resource": "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
                "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
            },
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "arn:aws:logs:us-east-1:111122223333:log-group:/app/*",
            },
        ],
    },
    indent=4,
)
TYPICAL_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::111122223333:oidc-provider/{GITHUB}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB}:aud": "sts.amazonaws.com",
                        f"{GITHUB}:sub": "repo:org/app:ref:refs/heads/main",
                    }
                },
            }
        ],
    },
    indent=4,
)
MS = 1000


def _p(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * MS:.2f} ms  p95 {percentile(values, 95) * MS:.2f} ms"


def one_policy(rounds: int = 500) -> None:
    started = time.perf_counter()
    analyse(TYPICAL_IDENTITY, PolicyKind.IDENTITY, risk_timeout=30)
    print(
        f"typical identity policy, first analysis (catalogue load + deep scan): "
        f"{(time.perf_counter() - started) * MS:.1f} ms"
    )
    for label, text, kind in (
        ("typical identity policy", TYPICAL_IDENTITY, PolicyKind.IDENTITY),
        ("typical trust policy   ", TYPICAL_TRUST, PolicyKind.TRUST),
    ):
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            analyse(text, kind, account_id="111122223333", risk_timeout=30)
            times.append(time.perf_counter() - started)
        print(f"{label}  {_p(times)}  ({rounds} analyses; target p95 < 10 ms)")


def managed_corpus() -> None:
    policies = json.loads(aws_managed_policies_data)
    started = time.perf_counter()
    slowest = []
    for name, policy in policies.items():
        one = time.perf_counter()
        analysis = analyse(json.dumps(policy["Document"]), PolicyKind.IDENTITY, risk_timeout=60)
        assert not analysis.errors, name
        slowest.append((time.perf_counter() - one, name))
    total = time.perf_counter() - started
    slowest.sort(reverse=True)
    print(
        f"all {len(policies)} AWS managed policies, full analysis with the deep scan: "
        f"{total:.1f} s (target < 30 s)"
    )
    print("  slowest: " + ", ".join(f"{n} {t * MS:.0f} ms" for t, n in slowest[:3]))
    started = time.perf_counter()
    deep_scan(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}],
        },
        timeout=60,
    )
    print(f"  one NotAction deep scan, uncached: {(time.perf_counter() - started) * MS:.0f} ms")


def live_check(rounds: int = 300) -> None:
    with running_app() as (_services, client, token):
        response = client.post("/create-role", data={"csrf_token": token}, follow_redirects=False)
        draft = response.headers["location"].split("/")[2]
        for kind, field, text in (
            ("trust", "custom_policy", TYPICAL_TRUST),
            ("inline", "inline_policy", TYPICAL_IDENTITY),
        ):
            times = []
            for i in range(rounds):
                # A different text each time, as typing makes (the deep scan is cached by
                # content, so this measures the grammar and catalogue checks each keystroke).
                typed = text.replace('"Version"', f'"Version"{" " * (i % 7)}')
                response = client.post(
                    f"/create-role/{draft}/check/{kind}",
                    data={"csrf_token": token, field: typed},
                    headers={"HX-Request": "true"},
                )
                assert response.status_code == 200
                timing = response.headers["server-timing"]
                times.append(float(timing.split("dur=", 1)[1]) / MS)
            print(
                f"live check ({kind:6}) server time  {_p(times)}  "
                f"({rounds} requests; target p95 < 30 ms)"
            )


def main() -> None:
    one_policy()
    managed_corpus()
    live_check()


if __name__ == "__main__":
    main()
