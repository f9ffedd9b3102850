"""Every page and operation of RoleDesk against its critical path, in the sandbox and with
modelled real-AWS latency (bench/latency.py), in one run: the table in docs/performance.md
(issue 15).

For each: the AWS calls it makes, its critical path (the calls that must follow one another:
a listing's pages, and the dependencies declared below), its median time without and with
the modelled delay, and time / critical path. A ratio near 1 means the page waits only for
calls it cannot avoid making one after another; a ratio of n means about n call-times are
spent on calls that could run side by side.

Time is RoleDesk's server time (its Server-Timing header, summed over the requests of a step)
for pages; for the bulk EC2 change, which runs in the background after its request, the wall
time from the request until the run has finished.

Run: .venv/bin/python -m bench.critical_paths [--repeats 5] [--latency-ms 50] [--jitter-ms 5]
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from bench import latency
from bench._setup import running_app
from bench.wizard import one_run

# What must wait for what, by operation (a call waits for those that ended before it began).
ROLE_PAGE = {
    "GetRolePolicy": {"ListRolePolicies"},
    # Instances using the role: its profiles, then their associations, then those instances.
    "DescribeIamInstanceProfileAssociations": {"ListInstanceProfilesForRole"},
    "DescribeInstances": {"DescribeIamInstanceProfileAssociations"},
}
CREATE_ROLE = {
    "CreateRole": {"GetRole", "GetInstanceProfile"},  # the name checks first
    "AttachRolePolicy": {"CreateRole"},
    "PutRolePolicy": {"CreateRole"},
    "CreateInstanceProfile": {"CreateRole"},
    "AddRoleToInstanceProfile": {"CreateInstanceProfile"},
    "GetRole": {"CreateRole"},  # reading the new role back (for the roles list)
}
CHANGES = (
    "AssociateIamInstanceProfile",
    "ReplaceIamInstanceProfileAssociation",
    "DisassociateIamInstanceProfile",
)
BULK_CHANGE: dict[str, set[str]] = {
    # The plan reads the instances and their associations; then each instance's change.
    name: {"DescribeInstances", "DescribeIamInstanceProfileAssociations"}
    for name in CHANGES
}
BULK_CHANGE["AssociateIamInstanceProfile"].add("DisassociateIamInstanceProfile")  # stopped ones


def server_seconds(response: Any) -> float:
    assert response.status_code == 200, (response.url, response.status_code)
    return float(response.headers["server-timing"].split("dur=")[1]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    latency.add_arguments(parser)
    args = parser.parse_args()
    model = latency.from_args(args)
    rows: list[tuple[str, latency.Result]] = []

    with running_app() as (services, client, token):
        model.attach(services.clients)
        timer: Any = client.app  # ServerTimer: server time summed over requests
        inventory = services.inventory
        names = [row.name for row in inventory.page(per_page=25).rows]

        def get(url: str) -> Callable[[], float]:
            return lambda: server_seconds(client.get(url))

        def measure(label: str, action: Callable[[], float | None], **kwargs: Any) -> None:
            print(f"measuring {label} ...", flush=True)
            result = model.measure(action, repeats=args.repeats, **kwargs)
            rows.append((label, result))
            print(result.line(label), flush=True)

        measure("GET /roles, list not loaded", get("/roles"), prepare=inventory.invalidate)
        measure("GET /roles, page/sort/search (held)", get("/roles?q=ec2&sort=created"))
        last_activity = "/roles/last-activity?" + "&".join(f"name={n}" for n in names)
        measure(
            f"GET /roles/last-activity ({len(names)} roles)",
            get(last_activity),
            # Bench only: forget the remembered last-use times so each view reads them.
            prepare=lambda: inventory._last_used.clear(),
        )
        measure("GET /roles/web-app-ec2 (role page)", get("/roles/web-app-ec2"), after=ROLE_PAGE)

        serial = itertools.count()

        def create_role(modelled: bool) -> latency.Run:
            """One wizard run (3 managed policies, EC2 service role); only the create
            request and its done page are timed and recorded."""
            found: list[latency.Recording] = []
            with ExitStack() as stack, model.switched(modelled):

                def before_create() -> None:
                    timer.total = 0.0
                    found.append(stack.enter_context(model.recording()))

                one_run(client, token, f"cp-{next(serial)}", before_create)
            recorded = found[0]
            return latency.Run(
                timer.total,
                recorded.critical_path(CREATE_ROLE),
                recorded.observed_path(),
                len(recorded.calls),
            )

        print("measuring POST create-role ...", flush=True)
        create = latency.Result(model.delay_ms)
        for _ in range(args.repeats):
            create.sandbox.append(create_role(False))
            create.modelled.append(create_role(True))
        rows.append(("POST create-role (3 policies, EC2 role)", create))
        print(create.line("POST create-role"), flush=True)

        measure(
            "GET /instances, list not loaded",
            get("/instances"),
            prepare=lambda: services.instances.invalidate(),
        )
        measure("GET /instances, page/filter (held)", get("/instances?role=web-app-ec2"))

        ids = [
            i.instance_id
            for i in services.ec2().list_instances()
            if i.state not in ("terminated", "shutting-down")
        ]
        choices = itertools.cycle(["profile:reporting-ec2", "profile:batch-worker-ec2"])

        def bulk_attach() -> None:
            response = client.post(
                "/instances/apply",
                data={
                    "csrf_token": token,
                    "action": "attach",
                    "region": services.settings.aws_region,
                    "choice": next(choices),
                    "instance_id": ids,
                },
                follow_redirects=False,
            )
            assert response.status_code == 303, response.text[:300]
            operation = response.headers["location"].rsplit("/", 1)[-1]
            timer.app.state.instances.runner.wait(operation, timeout=120)

        measure(f"bulk attach to {len(ids)} instances (until done)", bulk_attach, after=BULK_CHANGE)
        measure("GET /audit (history, no AWS call)", get("/audit"))

    print()
    print(
        "| page or operation | AWS calls | critical path (calls) | sandbox | "
        f"modelled ({model.delay_ms:g} ms a call) | ratio sandbox / modelled |"
    )
    print("|---|---|---|---|---|---|")
    for label, result in rows:
        run = result.example
        path = f"{len(run.critical)}: {run.critical.describe()}" if run.calls else "none"
        sandbox_ratio, modelled_ratio = result.ratio(False), result.ratio(True)
        ratios = (
            f"{sandbox_ratio:.2f} / **{modelled_ratio:.2f}**"
            if sandbox_ratio is not None and modelled_ratio is not None
            else "-"
        )
        print(
            f"| {label} | {run.calls} | {path} | {result.ms(False):.0f} ms | "
            f"{result.ms(True):.0f} ms | {ratios} |"
        )


if __name__ == "__main__":
    main()
