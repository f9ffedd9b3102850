"""Issue 11's figures: the role page and a role delete against their critical paths, with a
modelled AWS latency.

Every AWS call RoleDesk makes is delayed by `--latency` ms (a botocore `before-call` hook on
RoleDesk's own clients), as real AWS answers in 50-300 ms; the sandbox alone answers in ~5 ms.
The critical path is the longest chain of AWS calls that must follow one another, times the
latency, plus the same request's time with no added latency (RoleDesk's own work):

- role page of the seeded web-app-ec2 (two instances carry it): ListInstanceProfilesForRole,
  then DescribeIamInstanceProfileAssociations, then DescribeInstances (3 calls; GetRole,
  ListAttachedRolePolicies and ListRolePolicies then GetRolePolicy run beside them);
- delete of a role with 3 attached and 2 inline policies and an instance profile no instance
  uses: the blast radius reads (ListInstanceProfilesForRole, then
  DescribeIamInstanceProfileAssociations), then RemoveRoleFromInstanceProfile, then
  DeleteInstanceProfile, then DeleteRole; the detaches and inline deletes run beside the
  removal: 5 calls.

    .venv/bin/python -m bench.lifecycle [--latency 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from app.audit.audited import AuditContext, Change
from app.services import Services
from app.wizard.trust import service_trust
from bench._setup import running_app

POLICIES = (
    "arn:aws:iam::aws:policy/ReadOnlyAccess",
    "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
    "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess",
)
INLINE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
}
PAGE_CHAIN, DELETE_CHAIN = 3, 5
PAGE_ROLE = "web-app-ec2"


class Latency:
    """Adds `ms` to every AWS call of RoleDesk's clients while `on`; counts the calls."""

    def __init__(self, services: Services) -> None:
        self.ms = 0.0
        self.calls = 0
        self._lock = threading.Lock()
        for service in ("iam", "ec2"):
            client = (
                services.clients.client(service)
                if service == "iam"
                else services.clients.client("ec2", services.settings.aws_region)
            )
            client.meta.events.register("before-call", self._delay)

    def _delay(self, **_kwargs: Any) -> None:
        with self._lock:
            self.calls += 1
        if self.ms:
            time.sleep(self.ms / 1000)


def make_role(services: Services, name: str) -> None:
    iam, ctx = services.iam, AuditContext(actor="bench")
    call = services.audited.call
    call(
        ctx,
        Change(name),
        iam.create_role,
        name=name,
        trust_policy=service_trust("ec2.amazonaws.com"),
    )
    for arn in POLICIES:
        call(ctx, Change(name), iam.attach_role_policy, role_name=name, policy_arn=arn)
    for policy in ("one", "two"):
        call(
            ctx,
            Change(name),
            iam.put_role_policy,
            role_name=name,
            policy_name=policy,
            document=INLINE,
        )
    call(ctx, Change(name), iam.create_instance_profile, name=name)
    call(ctx, Change(name), iam.add_role_to_instance_profile, profile_name=name, role_name=name)


def server_ms(response: Any) -> float:
    for part in response.headers.get("server-timing", "").split(","):
        name, _, rest = part.strip().partition(";dur=")
        if name == "app":
            return float(rest)
    raise RuntimeError("no Server-Timing app figure")


def delete(client: Any, token: str, name: str) -> float:
    page = client.get(f"/roles/{name}/delete")
    base = page.text.split('name="base" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        f"/roles/{name}/delete",
        data={"csrf_token": token, "confirm": name, "base": base},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]
    return server_ms(response)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with running_app() as (services, client, token):
        latency = Latency(services)
        for i in range(2 * args.repeat):
            make_role(services, f"bench-del-{i}")
        results: dict[str, dict[float, list[float]]] = {"page": {}, "delete": {}}
        n = 0
        client.get(f"/roles/{PAGE_ROLE}")  # first use: EC2 regions, caches
        for ms in (0.0, args.latency):
            latency.ms = ms
            pages, deletes = [], []
            for _ in range(args.repeat):
                pages.append(server_ms(client.get(f"/roles/{PAGE_ROLE}")))
                deletes.append(delete(client, token, f"bench-del-{n}"))
                n += 1
            results["page"][ms], results["delete"][ms] = pages, deletes
        for label, chain in (("role page", PAGE_CHAIN), ("delete", DELETE_CHAIN)):
            key = "page" if label == "role page" else "delete"
            local = statistics.median(results[key][0.0])
            slow = statistics.median(results[key][args.latency])
            critical = local + chain * args.latency
            print(
                f"{label}: {slow:.0f} ms median server time at {args.latency:.0f} ms per call; "
                f"{local:.0f} ms with no added latency; critical path {chain} calls -> "
                f"{critical:.0f} ms; ratio {slow / critical:.2f} (target <= 1.2)"
            )


if __name__ == "__main__":
    main()
