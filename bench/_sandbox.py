"""The sandbox in a process of its own, for benchmarks: `python -m bench._sandbox DATABASE_URL`.

`roledesk serve` in sandbox mode runs moto inside RoleDesk's process, where moto's work on
each AWS call (its Flask app, XML, the IAM backend) competes with RoleDesk's threads for the
GIL: a benchmark of RoleDesk's own time then counts part of moto's as RoleDesk's, most of all
while calls run side by side. Real AWS is never in RoleDesk's process, so the benchmarks that
measure RoleDesk's own time (bench.wizard, bench.critical_paths) run the sandbox here by
default, and `--sandbox-in-process` gives the old figures for comparison.

This process starts the sandbox, seeds it with the example data (whose audit entries go to
the benchmark's database, as with the in-process sandbox; the seed reaches moto's backend
for role dates, so it must run here), prints the endpoint URL on one line, and serves until
its standard input is closed.
"""

from __future__ import annotations

import sys

from app.aws.sandbox import Sandbox
from app.sandbox_seed import seed
from app.services import build_services
from app.settings import Settings


def main() -> None:
    url = sys.argv[1]
    sandbox = Sandbox(0)
    endpoint = sandbox.start()
    services = build_services(Settings(database_url=url, mode="sandbox"), sandbox_endpoint=endpoint)
    seed(services)
    services.db.dispose()
    print(endpoint, flush=True)
    sys.stdin.read()  # until the benchmark closes it (or exits)
    sandbox.stop()


if __name__ == "__main__":
    main()
