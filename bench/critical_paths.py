"""Every page and operation of RoleDesk against its critical path, in the sandbox and with
modelled real-AWS latency (bench/latency.py), in one run: the table in docs/performance.md
(issue 15).

For each: the AWS calls it makes, its critical path (the calls that must follow one another:
a listing's pages, and the dependencies declared below), its median time without and with
the modelled delay, and time / critical path. A ratio near 1 means the page waits only for
calls it cannot avoid making one after another; a ratio of n means about n call-times are
spent on calls that could run side by side.

RoleDesk is served by uvicorn in this process, as `roledesk serve` runs it (`--in-process`:
called through Starlette's TestClient instead, as before 2026-12-01; its thread hand-offs add
about 0.4-1 ms to every request's server time).

Time is RoleDesk's server time (its Server-Timing header, summed over the requests of a step)
for pages; for the bulk EC2 change, which runs in the background after its request, the wall
time from the request until the run has finished.

The create-role figures come as two rows: the create request with its done page, and the
whole wizard (every request a browser makes, steps 1-3 included, all server time summed). The
bulk attach's critical path is taken at RoleDesk's concurrency (`ec2_bulk_concurrency`, 8 by
default): the ideal run of its calls as measured, the change calls 8 at a time as soon as a
worker is free, after the reads they depend on (bench/latency.py `ideal_schedule`): 50 changes
are 7 rounds after the reads.

Before measuring, the access review's scan runs once (set-up, not timed), as in a deployment
whose scheduled review has run: RoleDesk then re-checks each role it changes, and that
re-check must stay off the changes' path (until 2026-12-01 it doubled a create's time).
`--no-review-scan` measures a RoleDesk whose review never ran (the figures before that).

The whole wizard is measured twice: with plain forms (13 requests, JavaScript off) and with
htmx (7 requests, JavaScript on, issue 13). The sandbox (moto) runs in a process of its own
(bench._sandbox), as real AWS is never in RoleDesk's process; `--sandbox-in-process` runs it
in RoleDesk's process, where its work competes with RoleDesk's threads for the GIL (the
figures before 2026-12-01). `--wizard-only` measures only the create-role rows.

Run: .venv/bin/python -m bench.critical_paths [--repeats 5] [--instances 50]
     [--latency-ms 50] [--jitter-ms 5] [--only bulk,wizard] [--wizard-only]
     [--sandbox-in-process] [--in-process] [--no-review-scan]
The last lines (TARGET ...) give the ratios the issue's targets speak of, with the load.
"""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from app.roles.inventory import LAST_USED_WORKERS
from bench import latency
from bench._setup import instances_not_loaded, roles_not_loaded, running_app, served_app
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
# What the start of a bulk change reads (side by side) before its first change: the
# instances and their associations (the plan), and the attached role's policies (the
# security warnings that must be acknowledged, issue 10: a change waits for that check).
BULK_READS = {
    "DescribeInstances",
    "DescribeIamInstanceProfileAssociations",
    "ListInstanceProfiles",
    "GetRole",
    "ListAttachedRolePolicies",
    "GetPolicy",
    "GetPolicyVersion",
    "ListRolePolicies",
    "GetRolePolicy",
}
BULK_CHANGE: dict[str, set[str]] = {name: set(BULK_READS) for name in CHANGES}
BULK_CHANGE["AssociateIamInstanceProfile"].add("DisassociateIamInstanceProfile")  # stopped ones
BULK_CHANGE.update(
    {
        "GetPolicy": {"ListAttachedRolePolicies"},  # the attached policies' documents
        "GetPolicyVersion": {"GetPolicy"},
        "GetRolePolicy": {"ListRolePolicies"},  # the inline policies' documents
    }
)
# The targets: time / critical path with the modelled latency (issue 15).
TARGETS = {"bulk attach": 1.2, "whole wizard": 1.2}


def running_instances(services: Any, count: int) -> list[str]:
    """Ids of `count` instances that can take a role: the seeded ones that are not being
    terminated, plus new ones launched in the sandbox (set-up, not timed or delayed)."""
    import boto3

    from app.aws.clients import SANDBOX_KEYS

    def usable() -> list[str]:
        return [
            i.instance_id
            for i in services.ec2().list_instances()
            if i.state not in ("terminated", "shutting-down", "pending")
        ]

    have = usable()
    if len(have) < count:
        ec2 = boto3.client(
            "ec2",
            endpoint_url=services.clients.endpoint_url,
            region_name=services.settings.aws_region,
            **SANDBOX_KEYS,
        )
        more = count - len(have)
        ec2.run_instances(ImageId="ami-12c6146b", MinCount=more, MaxCount=more)
        services.instances.invalidate()
        have = usable()
    return have[:count]


@contextmanager
def _app(args: argparse.Namespace) -> Iterator[tuple[Any, Any, str, Any]]:
    """(services, signed-in client, csrf token, server-time sums with .total and .app):
    served by uvicorn (as `roledesk serve` runs it), or with --in-process called through
    Starlette's TestClient, whose thread hand-offs add about 0.4-1 ms to every request."""
    sandbox_process = not args.sandbox_in_process
    if args.in_process:
        with running_app(sandbox_process=sandbox_process) as (services, client, token):
            yield services, client, token, client.app  # ServerTimer: .total and .app
    else:
        with served_app(sandbox_process=sandbox_process) as found:
            yield found


def server_seconds(response: Any) -> float:
    assert response.status_code == 200, (response.url, response.status_code)
    return float(response.headers["server-timing"].split("dur=")[1]) / 1000


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--instances", type=int, default=50, help="instances of the bulk attach (default 50)"
    )
    parser.add_argument(
        "--only",
        default="",
        help="measure only the rows whose label contains one of these comma-separated words "
        "(e.g. --only bulk)",
    )
    parser.add_argument(
        "--wizard-only", action="store_true", help="only the create-role rows (issue 15's wizard)"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="call the app through Starlette's TestClient (the figures before 2026-12-01) "
        "instead of serving it with uvicorn",
    )
    parser.add_argument(
        "--sandbox-in-process",
        action="store_true",
        help="run moto in RoleDesk's process (shares its GIL), as `roledesk serve` does; by "
        "default it runs in a process of its own, as real AWS is never in RoleDesk's process",
    )
    parser.add_argument(
        "--no-review-scan",
        action="store_true",
        help="measure before any access review scan is stored (a RoleDesk whose access review "
        "has never run); by default the scan runs once first, as in a deployment where the "
        "scheduled review has run, so RoleDesk's own changes keep it up to date",
    )
    latency.add_arguments(parser)
    return parser.parse_args()


def wanted_rows(args: argparse.Namespace) -> Callable[[str], bool]:
    """Whether a row of that label is measured (--only, --wizard-only)."""
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    if args.wizard_only:
        only = ["create-role", "whole wizard"]
    return lambda label: not only or any(w in label for w in only)


def main() -> None:
    args = arguments()
    wanted = wanted_rows(args)
    model = latency.from_args(args)
    rows: list[tuple[str, latency.Result]] = []
    print("load average (1, 5, 15 min) at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("app: " + ("called through the TestClient" if args.in_process else "served by uvicorn"))
    print(
        "sandbox: "
        + (
            "moto in RoleDesk's process (shares its GIL)"
            if args.sandbox_in_process
            else "moto in a process of its own (bench._sandbox)"
        )
    )

    with _app(args) as (services, client, token, timer):
        model.attach(services.clients)
        inventory = services.inventory
        if not args.no_review_scan:
            # Set-up, before the delay is switched on: the scan every later change re-checks.
            services.access_scan.run_now()
        names = [row.name for row in inventory.page(per_page=25).rows]

        def get(url: str) -> Callable[[], float]:
            return lambda: server_seconds(client.get(url))

        def measure(label: str, action: Callable[[], float | None], **kwargs: Any) -> None:
            if not wanted(label):
                return
            print(f"measuring {label} ...", flush=True)
            result = model.measure(action, repeats=args.repeats, **kwargs)
            rows.append((label, result))
            print(result.line(label), flush=True)

        measure(
            "GET /roles, list not loaded", get("/roles"), prepare=lambda: roles_not_loaded(services)
        )
        measure("GET /roles, page/sort/search (held)", get("/roles?q=ec2&sort=created"))
        last_activity = "/roles/last-activity?" + "&".join(f"name={n}" for n in names)
        measure(
            f"GET /roles/last-activity ({len(names)} roles, {LAST_USED_WORKERS} at a time)",
            get(last_activity),
            # Bench only: forget the remembered last-use times so each view reads them.
            prepare=lambda: inventory._last_used.clear(),
            # As RoleDesk sends them: at most LAST_USED_WORKERS GetRole calls in flight.
            bound=({"GetRole"}, LAST_USED_WORKERS),
        )
        measure("GET /roles/web-app-ec2 (role page)", get("/roles/web-app-ec2"), after=ROLE_PAGE)

        serial = itertools.count()

        def create_role(modelled: bool, htmx: bool) -> tuple[latency.Run, latency.Run]:
            """One wizard run (3 managed policies, EC2 service role), with plain forms or
            htmx (JavaScript on): (the create request and its done page; the whole wizard,
            every request), each with its calls."""
            found: list[latency.Recording] = []
            steps = [0.0]
            with ExitStack() as stack, model.switched(modelled), model.recording() as whole:
                timer.total = 0.0

                def before_create() -> None:
                    steps[0] = timer.total
                    timer.total = 0.0
                    found.append(stack.enter_context(model.recording()))

                one_run(client, token, f"cp-{next(serial)}", before_create, htmx)
            recorded = found[0]
            return (
                latency.Run(
                    timer.total,
                    recorded.critical_path(CREATE_ROLE),
                    recorded.observed_path(),
                    len(recorded.calls),
                ),
                latency.Run(
                    steps[0] + timer.total,
                    whole.critical_path(CREATE_ROLE),
                    whole.observed_path(),
                    len(whole.calls),
                ),
            )

        creating = wanted("create-role") or wanted("whole wizard")
        if creating:
            print("measuring create-role ...", flush=True)
            create_role(False, True)  # the first run loads the managed policies: not measured
        for htmx in (False, True) if creating else ():
            how = "htmx, 7 requests" if htmx else "plain forms, 13 requests"
            create = latency.Result(model.delay_ms)
            wizard = latency.Result(model.delay_ms)
            for _ in range(args.repeats):
                for modelled in (False, True):
                    request, whole_run = create_role(modelled, htmx)
                    (create.modelled if modelled else create.sandbox).append(request)
                    (wizard.modelled if modelled else wizard.sandbox).append(whole_run)
            rows.append((f"POST create-role + done page ({how})", create))
            rows.append((f"whole wizard, every request ({how}; 3 policies, EC2 role)", wizard))
            print(create.line(f"POST create-role + done page ({how})"), flush=True)
            print(wizard.line(f"whole wizard ({how})"), flush=True)

        measure(
            "GET /instances, list not loaded",
            get("/instances"),
            prepare=lambda: instances_not_loaded(services),
        )
        measure("GET /instances, page/filter (held)", get("/instances?role=web-app-ec2"))

        ids = running_instances(services, args.instances) if wanted("bulk attach") else []
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

        concurrency = services.settings.ec2_bulk_concurrency
        measure(
            f"bulk attach to {len(ids)} instances, {concurrency} at a time (until done)",
            bulk_attach,
            after=BULK_CHANGE,
            bound=(CHANGES, concurrency),
        )
        measure("GET /audit (history, no AWS call)", get("/audit"))
    report(rows, model.delay_ms)


def report(rows: list[tuple[str, latency.Result]], delay_ms: float) -> None:
    """The table for docs/performance.md, then the ratios the issue's targets speak of."""
    print()
    print(
        "| page or operation | AWS calls | critical path (calls) | sandbox | "
        f"modelled ({delay_ms:g} ms a call) | ratio sandbox / modelled |"
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
    print()
    # The figures the targets speak of, each with the load it was measured under.
    load = os.getloadavg()
    for label, result in rows:
        target = next((t for word, t in TARGETS.items() if word in label), None)
        modelled = result.ratio(True)
        if target is None or modelled is None:
            continue
        each = sorted(r.seconds / r.critical.seconds for r in result.modelled)
        print(
            f"TARGET {label}: time / critical path, modelled = {modelled:.2f} (median; runs "
            f"{each[0]:.2f}-{each[-1]:.2f}), target <= {target:g}: "
            f"{'met' if modelled <= target else 'NOT met'} "
            f"(load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})"
        )


if __name__ == "__main__":
    main()
