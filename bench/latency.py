"""A latency model for benchmarks: what RoleDesk's pages cost on real AWS, not in the sandbox.

The sandbox answers an AWS call in about 5 ms; real IAM and EC2 answer in 50 to 300 ms. A page
that makes its calls one after another looks fast in the sandbox and is slow on AWS. This
module adds a fixed delay (default 50 ms, with jitter) to every AWS call RoleDesk makes, through
the botocore `before-send` hook of app/aws/latency.py (the one `ROLEDESK_SANDBOX_LATENCY_MS`
uses) on RoleDesk's own boto3 clients (so a benchmark's set-up calls, made with clients of its
own, are not delayed), and records every call: its operation, when
it started and ended, on which thread, and whether it continued a paginated listing.

From those records it computes the critical path: the chain of calls that must follow one
another. Two calls depend on each other when a page of a listing needs the previous page's
token, or when the benchmark declares it (`after={"CreateRole": {"GetRole"}}`: CreateRole
waits for the GetRole calls that finished before it started). The critical path's time is
the sum of its calls' measured times, so with the model on it is about `calls x delay`: the
least a person can wait on real AWS. A page's server time divided by it is the ratio the
performance targets speak of (at most 1.2). The observed path (every call that finished before
the next began) shows what the code actually waited on.

Use:

    model = LatencyModel(delay_ms=50, jitter_ms=5)
    model.attach(services.clients)            # RoleDesk's clients, now and later built
    result = model.measure(lambda: get_page(), after=DEPENDENCIES, repeats=7)
    print(result.line("GET /instances"))     # sandbox and modelled figures, ratios

`measure` alternates runs with the model off ("sandbox") and on ("modelled real AWS") so both
see the same machine; a run returns its server time in seconds (from `Server-Timing`, say),
or None to be timed around the call. `add_arguments`/`from_args` give every bench the same
`--latency-ms` and `--jitter-ms` options.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from app.aws.latency import AddedLatency

DEFAULT_DELAY_MS = 50.0
DEFAULT_JITTER_MS = 5.0
# Request parameters that carry a listing's continuation token (IAM: Marker, EC2: NextToken).
CONTINUATION_KEYS = ("Marker", "NextToken", "ContinuationToken")
Dependencies = Mapping[str, Collection[str]]
Bound = tuple[Collection[str], int]  # operations sharing a pool of workers, and its size


@dataclass(frozen=True)
class Call:
    """One AWS call as the client made it (retries included), with its modelled delay."""

    operation: str  # e.g. "ListRoles"
    started: float
    ended: float
    thread: int
    continuation: bool = False  # a later page of a listing

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass(frozen=True)
class Path:
    """A chain of calls, each starting after the one before ended."""

    calls: tuple[Call, ...]

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.calls)

    def __len__(self) -> int:
        return len(self.calls)

    def describe(self) -> str:
        """`DescribeInstances x2 -> ...`: the chain's operations, repeats folded."""
        folded: list[list[Any]] = []
        for call in self.calls:
            if folded and folded[-1][0] == call.operation:
                folded[-1][1] += 1
            else:
                folded.append([call.operation, 1])
        return " -> ".join(name if n == 1 else f"{name} x{n}" for name, n in folded)


def _start(call: Call) -> float:
    return call.started


def longest_chain(calls: list[Call], depends: Callable[[Call, Call], bool]) -> Path:
    """The chain of greatest total time in which each call depends on the one before
    (`depends(later, earlier)`, only ever asked for an `earlier` that ended first)."""
    ordered = sorted(calls, key=lambda c: c.started)
    best: list[float] = []
    back: list[int | None] = []
    for j, call in enumerate(ordered):
        best.append(call.seconds)
        back.append(None)
        for i in range(j):
            earlier = ordered[i]
            longer = best[i] + call.seconds > best[j]
            if longer and earlier.ended <= call.started and depends(call, earlier):
                best[j], back[j] = best[i] + call.seconds, i
    if not ordered:
        return Path(())
    at: int | None = max(range(len(ordered)), key=lambda k: best[k])
    chain: list[Call] = []
    while at is not None:
        chain.append(ordered[at])
        at = back[at]
    return Path(tuple(reversed(chain)))


def ideal_schedule(
    calls: list[Call], depends: Callable[[Call, Call], bool], shared: set[str], workers: int
) -> Path:
    """The chain that decides the length of the ideal run (see Recording.critical_path):
    each call starts when the last of what it depends on ends (`depends(later, earlier)`,
    asked only for an `earlier` that ended before `later` started in the real run) and,
    for operations in `shared`, a worker is free; calls keep their measured times."""
    ordered = sorted(calls, key=_start)
    end: dict[int, float] = {}
    back: dict[int, int | None] = {}
    free: list[tuple[float, int | None]] = [(0.0, None)] * workers  # (free at, last call)
    for j, call in enumerate(ordered):
        start, before = 0.0, None
        for i in range(j):
            earlier = ordered[i]
            if end[i] > start and earlier.ended <= call.started and depends(call, earlier):
                start, before = end[i], i
        if call.operation in shared:
            slot = min(range(workers), key=lambda w: free[w][0])
            if free[slot][0] > start:
                start, before = free[slot]
            end[j] = start + call.seconds
            free[slot] = (end[j], j)
        else:
            end[j] = start + call.seconds
        back[j] = before
    if not ordered:
        return Path(())
    at: int | None = max(end, key=lambda k: end[k])
    chain: list[Call] = []
    while at is not None:
        chain.append(ordered[at])
        at = back[at]
    return Path(tuple(reversed(chain)))


@dataclass
class Recording:
    """The calls made while it was active."""

    calls: list[Call] = field(default_factory=list)

    def critical_path(self, after: Dependencies | None = None, bound: Bound | None = None) -> Path:
        """The calls that must follow one another: a listing's pages, and `after`'s
        declared dependencies (operation -> operations it must wait for).

        `bound` = (operations, n): those calls share n workers, as RoleDesk sends them (the
        bulk EC2 change: 8 at a time). The path is then that of the ideal run at that
        concurrency: every call as long as it was measured, started as soon as what it
        depends on has ended and (for the bounded calls, in the order RoleDesk started
        them) one of the n workers is free, with no time of RoleDesk's own between calls.
        Its time is the least the operation could take with those calls, n at a time: 50
        calls of 50 ms at 8 at a time are 7 rounds, 350 ms, and a stopped instance's detach
        and attach two calls of a worker."""
        needs = after or {}

        def depends(later: Call, earlier: Call) -> bool:
            same_listing = later.thread == earlier.thread and later.operation == earlier.operation
            if later.continuation and same_listing:
                return True
            return earlier.operation in needs.get(later.operation, ())

        if bound is None:
            return longest_chain(self.calls, depends)
        return ideal_schedule(self.calls, depends, set(bound[0]), bound[1])

    def observed_path(self) -> Path:
        """The calls the code made one after another (each ended before the next began)."""
        return longest_chain(self.calls, lambda later, earlier: True)


class LatencyModel(AddedLatency):
    """RoleDesk's own added latency (app/aws/latency.py, the hook behind
    `ROLEDESK_SANDBOX_LATENCY_MS`), with a recording of every call while a recording is
    active."""

    def __init__(
        self,
        delay_ms: float = DEFAULT_DELAY_MS,
        jitter_ms: float = DEFAULT_JITTER_MS,
        *,
        seed: int = 15,
        enabled: bool = True,
    ) -> None:
        super().__init__(delay_ms, jitter_ms, seed=seed, enabled=enabled)
        self._local = threading.local()
        self._recordings: list[Recording] = []

    # Hooks -------------------------------------------------------------------------------

    def attach(self, clients: Any) -> None:
        """Hook every boto3 client of an `app.aws.clients.AwsClients`, now and later."""
        clients.hook_every_client("provide-client-params", self._started)
        super().attach(clients)  # the delay, before every HTTP attempt (retries too)
        clients.hook_every_client("after-call", self._ended)
        clients.hook_every_client("after-call-error", self._ended)

    def _started(self, params: Any = None, model: Any = None, **_: Any) -> None:
        keys = params if isinstance(params, dict) else {}
        self._local.call = (
            getattr(model, "name", "?"),
            time.perf_counter(),
            any(keys.get(k) for k in CONTINUATION_KEYS),
        )

    def _ended(self, **_: Any) -> None:
        started = getattr(self._local, "call", None)
        if started is None:
            return
        self._local.call = None
        operation, at, continuation = started
        call = Call(operation, at, time.perf_counter(), threading.get_ident(), continuation)
        with self._lock:
            for recording in self._recordings:
                recording.calls.append(call)

    # Measuring ---------------------------------------------------------------------------

    @contextmanager
    def recording(self) -> Iterator[Recording]:
        found = Recording()
        with self._lock:
            self._recordings.append(found)
        try:
            yield found
        finally:
            with self._lock:
                self._recordings.remove(found)

    @contextmanager
    def switched(self, enabled: bool) -> Iterator[None]:
        was, self.enabled = self.enabled, enabled
        try:
            yield
        finally:
            self.enabled = was

    def run(
        self,
        action: Callable[[], float | None],
        *,
        modelled: bool,
        after: Dependencies | None,
        bound: Bound | None = None,
    ) -> Run:
        """One run of `action` with the model on or off: its time and its critical path."""
        with self.switched(modelled), self.recording() as recorded:
            started = time.perf_counter()
            reported = action()
            wall = time.perf_counter() - started
        return Run(
            reported if reported is not None else wall,
            recorded.critical_path(after, bound),
            recorded.observed_path(),
            len(recorded.calls),
        )

    def measure(
        self,
        action: Callable[[], float | None],
        *,
        after: Dependencies | None = None,
        bound: Bound | None = None,
        repeats: int = 5,
        prepare: Callable[[], None] | None = None,
    ) -> Result:
        """`repeats` runs without and with the modelled latency, alternating; `prepare` runs
        (untimed, model off) before each run, e.g. to empty a cache for a cold view."""
        result = Result(self.delay_ms)
        for _ in range(repeats):
            for modelled in (False, True):
                if prepare is not None:
                    with self.switched(False):
                        prepare()
                run = self.run(action, modelled=modelled, after=after, bound=bound)
                (result.modelled if modelled else result.sandbox).append(run)
        return result


@dataclass(frozen=True)
class Run:
    seconds: float  # the page's or operation's time
    critical: Path
    observed: Path
    calls: int


@dataclass
class Result:
    """Runs of one page or operation, in the sandbox and with modelled latency."""

    delay_ms: float
    sandbox: list[Run] = field(default_factory=list)
    modelled: list[Run] = field(default_factory=list)

    @staticmethod
    def _median(runs: list[Run], what: Callable[[Run], float]) -> float:
        return statistics.median(what(r) for r in runs) if runs else 0.0

    def ms(self, modelled: bool) -> float:
        return 1000 * self._median(self.modelled if modelled else self.sandbox, lambda r: r.seconds)

    def path_ms(self, modelled: bool) -> float:
        runs = self.modelled if modelled else self.sandbox
        return 1000 * self._median(runs, lambda r: r.critical.seconds)

    def ratio(self, modelled: bool) -> float | None:
        """Median of each run's time over its own critical path (None without AWS calls)."""
        runs = self.modelled if modelled else self.sandbox
        ratios = [r.seconds / r.critical.seconds for r in runs if r.critical.seconds > 0]
        return statistics.median(ratios) if ratios else None

    def percentile_ms(self, pct: float, modelled: bool) -> float:
        values = sorted(r.seconds for r in (self.modelled if modelled else self.sandbox))
        return 1000 * values[min(len(values) - 1, round(pct / 100 * (len(values) - 1)))]

    @property
    def example(self) -> Run:
        return (self.modelled or self.sandbox)[-1]

    def line(self, label: str) -> str:
        """One line: calls, critical path, sandbox and modelled times, and the ratios."""
        run = self.example

        def ratio(modelled: bool) -> str:
            found = self.ratio(modelled)
            return "   -" if found is None else f"{found:4.2f}"

        return (
            f"{label:<44} calls {run.calls:>3}  path {len(run.critical):>2} "
            f"(observed {len(run.observed):>2})  "
            f"sandbox {self.ms(False):8.1f} ms / path {self.path_ms(False):7.1f} = {ratio(False)}  "
            f"modelled {self.ms(True):8.1f} ms / path {self.path_ms(True):7.1f} = {ratio(True)}"
        )


HEADER = (
    "ratio = time / critical path (the calls that must follow one another), "
    "medians; modelled = sandbox + {delay:g} ms (+/- {jitter:g}) per AWS call"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The same latency options on every bench."""
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=DEFAULT_DELAY_MS,
        help="modelled real-AWS delay added to each AWS call (default 50)",
    )
    parser.add_argument(
        "--jitter-ms",
        type=float,
        default=DEFAULT_JITTER_MS,
        help="the delay varies by up to this much either way (default 5)",
    )


def from_args(args: argparse.Namespace) -> LatencyModel:
    model = LatencyModel(args.latency_ms, args.jitter_ms)
    print(HEADER.format(delay=model.delay_ms, jitter=model.jitter_ms))
    return model
