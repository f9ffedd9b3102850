"""The account scan behind the access review, held in memory like the roles list.

One scan reads every role with its trust policy, attached and inline policies, boundary, tags
and last use, and the customer managed policies' documents, through
GetAccountAuthorizationDetails (a page of up to 1,000 roles per call). The AWS managed
policies the roles hold are read once each (GetPolicy, then GetPolicyVersion cached per
version: app.policy.role_review), because that call would return all of them. Then the policy
checks run over each role's whole set of permissions.

It runs on a background thread, never on a request: the page shows its progress and the last
finished result with its age. The result is replaced when a new scan finishes, kept for
`ttl_seconds` before a visit starts a new one, and updated at once for the role RoleDesk
itself changed (the audited path calls `on_change`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.aws.errors import AwsError, NotFound
from app.aws.iam import IamGateway
from app.aws.types import AttachedPolicy, InlinePolicy, ManagedDocument, Role, RoleDetail
from app.policy.risk import GATE_TIMEOUT, HeldPolicy
from app.policy.role_review import managed_document
from app.review import stored
from app.review.findings import (
    ReviewFinding,
    boundary_finding,
    document_digest,
    inline_findings,
    policy_findings,
)
from app.roles.inventory import role_name_from_target
from app.shared.state import SharedState

log = logging.getLogger(__name__)
# Roles changed inside an operation run (AccountScan.deferred), by scan: re-checked once, when
# the run ends. The run's step threads run in copies of its context, so they add to its sets.
_DEFERRED: ContextVar[dict[AccountScan, set[str]] | None] = ContextVar(
    "review_deferred", default=None
)

Named = tuple[str, dict[str, Any]] | None


@dataclass(frozen=True)
class ScannedRole:
    """One role as the scan found it, with the policy checks' findings."""

    role: Role
    attached: tuple[AttachedPolicy, ...]
    inline: tuple[InlinePolicy, ...]
    checked: tuple[ReviewFinding, ...]
    complete: bool
    inline_digests: dict[str, str]
    name_key: str
    created_key: float
    last_used_key: float  # 0 when never used
    # The time before which the role counts as unused: its last use, or its creation when
    # never used; None when its last use is not known.
    activity_key: float | None = None

    @property
    def name(self) -> str:
        return self.role.name


@dataclass(frozen=True)
class ScanResult:
    roles: dict[str, ScannedRole]  # by lower-cased name
    managed_digests: dict[str, str]  # customer managed document digest -> policy name
    finished_at: datetime
    # Worked out once per result (see `of`): how many roles hold each inline document,
    # whether any role in the account has a permissions boundary, and each role's finding
    # kinds that do not depend on the clock or the reviews (by lower-cased name), so a page
    # filters thousands of roles with set operations and writes findings out for its rows only.
    inline_counts: Counter[str] = field(default_factory=Counter)
    uses_boundaries: bool = False
    static_kinds: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, roles: dict[str, ScannedRole], managed: dict[str, str], finished_at: datetime
    ) -> ScanResult:
        counts: Counter[str] = Counter()
        for r in roles.values():
            counts.update(set(r.inline_digests.values()))
        uses = any(r.role.permissions_boundary_arn for r in roles.values())
        kinds = {}
        for key, r in roles.items():
            found = {f.kind for f in r.checked}
            if inline_findings(r.inline_digests, counts, managed):
                found.add("inline")
            if boundary_finding(r.role, uses) is not None:
                found.add("boundary")
            kinds[key] = frozenset(found)
        return cls(roles, managed, finished_at, counts, uses, kinds)


@dataclass
class Progress:
    running: bool = False
    phase: str = ""
    done: int = 0
    total: int = 0
    started_at: datetime | None = None
    error: str = ""
    # Seconds spent reading AWS and running the policy checks (bench/access_review.py).
    aws_seconds: float = 0.0
    checks_seconds: float = 0.0


class _Documents:
    """Managed policy documents for one scan: the customer managed ones from the scan's own
    pages, the AWS managed ones read once each."""

    def __init__(self, iam: IamGateway, local: Iterable[ManagedDocument]) -> None:
        self._iam = iam
        self._named: dict[str, Named] = {
            d.arn: (d.name, d.document) for d in local if isinstance(d.document, dict)
        }
        self._lock = threading.Lock()

    def named(self, arn: str) -> Named:
        with self._lock:
            if arn in self._named:
                return self._named[arn]
        try:
            found = managed_document(self._iam, arn)
        except NotFound:
            found = None
        with self._lock:
            self._named[arn] = found
        return found


def _held_arns(details: Iterable[RoleDetail]) -> set[str]:
    arns: set[str] = set()
    for detail in details:
        arns.update(p.arn for p in detail.attached)
        if detail.role.permissions_boundary_arn:
            arns.add(detail.role.permissions_boundary_arn)
    return arns


def _sort_keys(role: Role) -> tuple[str, float, float]:
    used = role.last_used.last_used if role.last_used else None
    return role.name.lower(), role.created.timestamp(), used.timestamp() if used else 0.0


def check_role(
    detail: RoleDetail, documents: _Documents, account_id: str, timeout: float = GATE_TIMEOUT
) -> ScannedRole:
    """The policy checks over everything the role holds, limited by its boundary."""
    held: list[HeldPolicy] = []
    for policy in detail.attached:
        named = documents.named(policy.arn)
        if named is not None:
            held.append(HeldPolicy(named[0], named[1], "managed"))
    digests = {}
    for inline in detail.inline:
        digests[inline.name] = document_digest(inline.document)
        if isinstance(inline.document, dict):
            held.append(HeldPolicy(inline.name, inline.document, "inline"))
    boundary = None
    if detail.role.permissions_boundary_arn:
        named = documents.named(detail.role.permissions_boundary_arn)
        if named is not None:
            boundary = HeldPolicy(named[0], named[1], "boundary")
    checked, complete = policy_findings(detail.role, held, boundary, account_id, timeout=timeout)
    name_key, created_key, used_key = _sort_keys(detail.role)
    known = detail.role.last_used is not None
    return ScannedRole(
        detail.role,
        detail.attached,
        detail.inline,
        checked,
        complete,
        digests,
        name_key,
        created_key,
        used_key,
        (used_key or created_key) if known else None,
    )


# The shared state's names for the scan (app.shared.state), keyed by account id: the scanned
# roles (one item per lower-cased role name, plus the result's own facts under META, which
# no role name can be: IAM names have no "~"), and the progress of the scan running now.
SCAN = "review_scan"
PROGRESS = "review_scan_progress"
META = "~scan"
# A running scan writes its progress at most this often, and at least this often it is
# alive; a process killed mid-scan leaves a "running" row that stops counting after ALIVE.
PROGRESS_EVERY = 0.5
ALIVE = timedelta(seconds=180)


def scanned_to_json(scanned: ScannedRole) -> str:
    return stored.dumps(
        {
            "role": stored.role_data(scanned.role),
            "attached": [[p.name, p.arn] for p in scanned.attached],
            "inline": [[p.name, p.document] for p in scanned.inline],
            "checked": [stored.finding_data(f) for f in scanned.checked],
            "complete": scanned.complete,
            "inline_digests": scanned.inline_digests,
        }
    )


def scanned_from_json(data: str) -> ScannedRole:
    raw = json.loads(data)
    role = stored.role_of(raw["role"])
    name_key, created_key, used_key = _sort_keys(role)
    return ScannedRole(
        role,
        tuple(AttachedPolicy(name, arn) for name, arn in raw["attached"]),
        tuple(InlinePolicy(name, document) for name, document in raw["inline"]),
        tuple(stored.finding_of(f) for f in raw["checked"]),
        raw["complete"],
        raw["inline_digests"],
        name_key,
        created_key,
        used_key,
        (used_key or created_key) if role.last_used is not None else None,
    )


def progress_to_json(progress: Progress, holder: str) -> str:
    return stored.dumps(
        {
            "running": progress.running,
            "phase": progress.phase,
            "done": progress.done,
            "total": progress.total,
            "started_at": stored.when(progress.started_at),
            "error": progress.error,
            "aws_seconds": progress.aws_seconds,
            "checks_seconds": progress.checks_seconds,
            "holder": holder,
            "written_at": datetime.now(UTC).isoformat(),
        }
    )


def progress_from_json(data: str) -> Progress:
    raw = json.loads(data)
    alive = datetime.now(UTC) - datetime.fromisoformat(raw["written_at"]) < ALIVE
    return Progress(
        running=raw["running"] and alive,
        phase=raw["phase"],
        done=raw["done"],
        total=raw["total"],
        started_at=stored.moment(raw["started_at"]),
        error=raw["error"]
        or (
            ""
            if alive or not raw["running"]
            else "The scan stopped answering (its process ended); scan again."
        ),
        aws_seconds=raw["aws_seconds"],
        checks_seconds=raw["checks_seconds"],
    )


class AccountScan:
    """One account's scan. With a shared state (several processes, issue 16) the result and
    the progress live in the database: one process scans at a time (a scan started anywhere
    is shown, with its progress, by every process), its result is stored for all, and a
    role RoleDesk changes is re-read once, by the process that changed it, and stored."""

    def __init__(
        self,
        iam: IamGateway,
        account_id: str,
        *,
        ttl_seconds: float = 900,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedState | None = None,
    ) -> None:
        self._iam = iam
        self._account_id = account_id
        self._ttl = ttl_seconds
        self._clock = clock
        self._result: ScanResult | None = None
        self._finished_clock = 0.0
        self._documents = _Documents(iam, ())
        self._lock = threading.Lock()
        self._progress = Progress()
        self._thread: threading.Thread | None = None
        # Roles RoleDesk changed while a scan was reading: re-read once it finishes, so the
        # scan's older reading does not hide the change.
        self._changed_during: set[str] = set()
        self._shared = shared
        # With a shared state: the stored result changed since this process last read it.
        self._reload = True
        self._stored_at: datetime | None = None  # when the stored result was read from AWS
        self._load_lock = threading.Lock()
        # Re-checks of roles RoleDesk changed, on a thread of their own (see on_change): the
        # roles queued and not yet being read, and the re-checks not yet known finished.
        self._rechecker: ThreadPoolExecutor | None = None
        self._queued: set[str] = set()
        self._rechecks: list[Future[None]] = []
        if shared is not None:
            shared.subscribe(SCAN, self._on_notice)

    @property
    def result(self) -> ScanResult | None:
        """The scan as it stands, with RoleDesk's own changes made so far in this process
        re-checked (waits for their re-checks)."""
        self.settle()
        return self._current()

    def _current(self) -> ScanResult | None:
        if self._shared is not None:
            self._shared.catch_up()
            if self._reload:
                self._load_stored()
        return self._result

    @property
    def progress(self) -> Progress:
        """This process's scan while it runs; otherwise, with a shared state, the last scan
        started by any process (running, finished or failed)."""
        local = self._progress
        if self._shared is None or local.running:
            return local
        data = self._shared.load_item(PROGRESS, self._account_id, "progress")
        return progress_from_json(data) if data is not None else local

    @progress.setter
    def progress(self, value: Progress) -> None:
        self._progress = value

    def is_stale(self) -> bool:
        if self._shared is not None:
            if self._current() is None or self._stored_at is None:
                return True
            return (datetime.now(UTC) - self._stored_at).total_seconds() >= self._ttl
        return self._result is None or self._clock() - self._finished_clock >= self._ttl

    def start(self) -> bool:
        """Start a scan on a background thread unless one is running, here or (with a shared
        state) in another process (False then)."""
        with self._lock:
            if self._progress.running:
                return False
            progress = Progress(running=True, phase="Reading roles", started_at=datetime.now(UTC))
            if self._shared is not None and not self._claim(progress):
                return False
            self._progress = progress
            self._thread = threading.Thread(target=self._run, name="access-scan", daemon=True)
            self._thread.start()
            return True

    def _claim(self, progress: Progress) -> bool:
        """Record this process's scan as the running one, unless another one runs."""
        assert self._shared is not None
        with self._shared.lock(f"{PROGRESS}:{self._account_id}"):
            data = self._shared.load_item(PROGRESS, self._account_id, "progress")
            if data is not None and progress_from_json(data).running:
                return False
            self._write_progress(progress)
            return True

    def _write_progress(self, progress: Progress) -> None:
        if self._shared is not None:
            data = progress_to_json(progress, self._shared.origin)
            self._shared.keep_item(PROGRESS, self._account_id, "progress", data)

    def ensure(self) -> None:
        """Start a scan when there is no result yet or it is older than the TTL."""
        if self.is_stale():
            self.start()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def run_now(self) -> ScanResult:
        """Scan on this thread (the CLI and the benchmark)."""
        with self._lock:
            self._progress = Progress(
                running=True, phase="Reading roles", started_at=datetime.now(UTC)
            )
            self._write_progress(self._progress)
        self._run()
        assert self._result is not None
        return self._result

    def _run(self) -> None:
        progress = self._progress
        written = [time.monotonic()]

        def advanced() -> None:
            """Tell the other processes how far the scan is (at most every PROGRESS_EVERY)."""
            if self._shared is not None and time.monotonic() - written[0] >= PROGRESS_EVERY:
                written[0] = time.monotonic()
                try:
                    self._write_progress(progress)
                except Exception:  # progress is news, not the scan: it goes on
                    log.exception("writing the access scan's progress failed")

        try:
            since = self._shared.last_change_id() if self._shared is not None else 0
            started = time.perf_counter()
            began = datetime.now(UTC)
            details: list[RoleDetail] = []
            local: list[ManagedDocument] = []
            for page in self._iam.authorization_pages():
                details.extend(page.roles)
                local.extend(page.policies)
                progress.done = len(details)
                advanced()
            documents = _Documents(self._iam, local)
            # The AWS managed policies the roles hold (and boundaries), each read once, before
            # the checks: the checks then make no AWS call.
            for arn in sorted(_held_arns(details)):
                documents.named(arn)
                advanced()
            checked = time.perf_counter()
            progress.aws_seconds = checked - started
            progress.phase, progress.done, progress.total = "Checking policies", 0, len(details)
            roles: dict[str, ScannedRole] = {}
            for detail in details:
                roles[detail.role.name.lower()] = check_role(detail, documents, self._account_id)
                progress.done += 1
                advanced()
            progress.checks_seconds = time.perf_counter() - checked
            managed = {
                document_digest(d.document): d.name for d in local if isinstance(d.document, dict)
            }
            finished = datetime.now(UTC)
            if self._shared is not None:
                self._store(roles, managed, began, finished, since)
            with self._lock:
                self._result = ScanResult.of(roles, managed, finished)
                self._documents = documents
                self._finished_clock = self._clock()
                changed, self._changed_during = self._changed_during, set()
            for name in sorted(changed):
                self._apply_change(name)
        except AwsError as exc:
            progress.error = f"{exc.message} ({exc.code})"
            log.warning("access scan failed: %s", exc)
        except Exception as exc:  # e.g. the database: shown, not a scan "running" forever
            progress.error = f"The scan stopped: {exc}"
            log.exception("access scan failed")
        finally:
            progress.running = False
            try:
                self._write_progress(progress)
            except Exception:  # its lease (ALIVE) ends it for the other processes
                log.exception("writing the end of the access scan failed")

    def _store(
        self,
        roles: dict[str, ScannedRole],
        managed: dict[str, str],
        began: datetime,
        finished: datetime,
        since: int,
    ) -> None:
        """Store the result for every process. Roles RoleDesk changed (through any process)
        since the scan began keep their stored row, which is newer than this reading."""
        assert self._shared is not None
        items = {name: scanned_to_json(r) for name, r in roles.items()}
        items[META] = stored.dumps({"managed": managed, "finished_at": stored.when(finished)})
        self._shared.replace_items(SCAN, self._account_id, items, began, since)
        with self._load_lock:
            for name in self._shared.changed_since(SCAN, self._account_id, since):
                data = self._shared.load_item(SCAN, self._account_id, name)
                if data is None:
                    roles.pop(name, None)
                else:
                    roles[name] = scanned_from_json(data)
            self._stored_at = began
            self._reload = False

    def _load_stored(self) -> None:
        assert self._shared is not None
        with self._load_lock:
            if not self._reload:
                return
            self._reload = False
            found = self._shared.load(SCAN, self._account_id)
            meta = found.items.pop(META, None) if found is not None else None
            if found is None or meta is None:
                return  # never scanned (or only single roles stored): the first scan reads all
            facts = json.loads(meta)
            roles = {name: scanned_from_json(data) for name, data in found.items.items()}
            with self._lock:
                self._result = ScanResult.of(
                    roles, facts["managed"], datetime.fromisoformat(facts["finished_at"])
                )
                self._stored_at = found.loaded_at

    def _on_notice(self, key: str, item: str | None) -> None:
        """Another process stored a scan (item None) or re-checked one role."""
        if key != self._account_id:
            return
        if item is None or self._result is None or self._reload:
            self._reload = True  # read at the next look at the result
            return
        assert self._shared is not None
        data = self._shared.load_item(SCAN, self._account_id, item)
        self._put(item, scanned_from_json(data) if data is not None else None)

    # Changes -----------------------------------------------------------------------------

    def on_change(self, action: str, target: str | None) -> None:
        """After RoleDesk changed a role, re-read and re-check that role (and, with a shared
        state, store it for every process).

        The re-check reads the role back from AWS (GetRole, its policies: three calls one
        after another, 150-900 ms on real AWS) on a thread of its own, not on the changing
        call's thread: there it came between a new role's CreateRole and its attaches, and
        after each attach, tripling a create's time once a scan was stored (issue 15). A
        role queued and not yet being read is not queued twice: its one re-read sees every
        change made before it starts. Pages read the result through `result`, which waits
        for this process's re-checks; another process shows the change once it is stored."""
        name = role_name_from_target(target)
        if name is None or not action.startswith("iam:"):
            return
        if target is not None and f"::{self._account_id}:" not in target:
            return  # a role of another account (a cross-account pair's other side)
        deferred = _DEFERRED.get()
        if deferred is not None:
            deferred.setdefault(self, set()).add(name)
            return
        self._queue(name)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Inside, a role RoleDesk changes is re-checked once, when the block ends, not after
        each change: an operation run (a create's CreateRole, attaches and instance profile)
        then reads the role back once, after its last call, and its re-read calls do not
        compete with the run's own."""
        if _DEFERRED.get() is not None:
            yield  # an outer run re-checks
            return
        changed: dict[AccountScan, set[str]] = {}
        token = _DEFERRED.set(changed)
        try:
            yield
        finally:
            _DEFERRED.reset(token)
            for scan, names in changed.items():
                for name in sorted(names):
                    scan._queue(name)

    def _queue(self, name: str) -> None:
        key = name.lower()
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
            if self._rechecker is None:
                # One thread: re-checks are applied in the order of the changes.
                self._rechecker = ThreadPoolExecutor(1, thread_name_prefix="review-recheck")
            self._rechecks.append(self._rechecker.submit(self._recheck, name))

    def settle(self) -> None:
        """Wait for the re-checks of RoleDesk's own changes queued so far."""
        with self._lock:
            queued = list(self._rechecks)
        if not queued:
            return
        wait(queued)
        with self._lock:
            self._rechecks = [f for f in self._rechecks if not f.done()]

    def _recheck(self, name: str) -> None:
        with self._lock:
            # From here on a new change queues a new re-read: this one may be too early.
            self._queued.discard(name.lower())
        try:
            if self._shared is not None:
                self._store_change(name)
                return
            with self._lock:
                if self._progress.running:
                    self._changed_during.add(name)
                if self._result is None:
                    return
            self._apply_change(name)
        except Exception:  # e.g. the database: the next scan reads the role anyway
            log.exception("re-checking role %s after RoleDesk's change failed", name)

    def _store_change(self, name: str) -> None:
        """Re-read the role and store it, when a scan is stored or running anywhere (a
        scan that finishes later keeps this newer row: `_store`)."""
        assert self._shared is not None
        if self._current() is None and not self.progress.running:
            return  # nothing scanned anywhere yet: the first scan reads it
        try:
            updated = self._read_role(name)
        except AwsError:
            self._shared.expire(SCAN, self._account_id)  # every process scans at its next visit
            self._reload = True
            return
        data = scanned_to_json(updated) if updated is not None else None
        with self._load_lock:
            self._shared.put_item(SCAN, self._account_id, name.lower(), data)
            self._put(name.lower(), updated)

    def _apply_change(self, name: str) -> None:
        try:
            updated = self._read_role(name)
        except AwsError:
            with self._lock:
                self._finished_clock = -self._ttl  # stale: the next visit scans again
            return
        self._put(name.lower(), updated)

    def _put(self, key: str, updated: ScannedRole | None) -> None:
        with self._lock:
            result = self._result
            if result is None:
                return
            roles = dict(result.roles)
            if updated is None:
                roles.pop(key, None)
            else:
                roles[key] = updated
            self._result = ScanResult.of(roles, result.managed_digests, result.finished_at)

    def _read_role(self, name: str) -> ScannedRole | None:
        iam = self._iam
        try:
            role = iam.get_role(name)
            attached = tuple(iam.list_attached_role_policies(name))
            inline = tuple(iam.get_role_policy(name, p) for p in iam.list_role_policy_names(name))
        except NotFound:
            return None
        return check_role(RoleDetail(role, attached, inline), self._documents, self._account_id)
