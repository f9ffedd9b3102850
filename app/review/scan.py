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

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.aws.errors import AwsError, NotFound
from app.aws.iam import IamGateway
from app.aws.types import AttachedPolicy, InlinePolicy, ManagedDocument, Role, RoleDetail
from app.policy.risk import GATE_TIMEOUT, HeldPolicy
from app.policy.role_review import managed_document
from app.review.findings import (
    ReviewFinding,
    boundary_finding,
    document_digest,
    inline_findings,
    policy_findings,
)
from app.roles.inventory import role_name_from_target

log = logging.getLogger(__name__)

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


class AccountScan:
    def __init__(
        self,
        iam: IamGateway,
        account_id: str,
        *,
        ttl_seconds: float = 900,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._iam = iam
        self._account_id = account_id
        self._ttl = ttl_seconds
        self._clock = clock
        self._result: ScanResult | None = None
        self._finished_clock = 0.0
        self._documents = _Documents(iam, ())
        self._lock = threading.Lock()
        self.progress = Progress()
        self._thread: threading.Thread | None = None
        # Roles RoleDesk changed while a scan was reading: re-read once it finishes, so the
        # scan's older reading does not hide the change.
        self._changed_during: set[str] = set()

    @property
    def result(self) -> ScanResult | None:
        return self._result

    def is_stale(self) -> bool:
        return self._result is None or self._clock() - self._finished_clock >= self._ttl

    def start(self) -> bool:
        """Start a scan on a background thread unless one is running (False then)."""
        with self._lock:
            if self.progress.running:
                return False
            self.progress = Progress(
                running=True, phase="Reading roles", started_at=datetime.now(UTC)
            )
            self._thread = threading.Thread(target=self._run, name="access-scan", daemon=True)
            self._thread.start()
            return True

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
            self.progress = Progress(
                running=True, phase="Reading roles", started_at=datetime.now(UTC)
            )
        self._run()
        assert self._result is not None
        return self._result

    def _run(self) -> None:
        progress = self.progress
        try:
            started = time.perf_counter()
            details: list[RoleDetail] = []
            local: list[ManagedDocument] = []
            for page in self._iam.authorization_pages():
                details.extend(page.roles)
                local.extend(page.policies)
                progress.done = len(details)
            documents = _Documents(self._iam, local)
            # The AWS managed policies the roles hold (and boundaries), each read once, before
            # the checks: the checks then make no AWS call.
            for arn in sorted(_held_arns(details)):
                documents.named(arn)
            checked = time.perf_counter()
            progress.aws_seconds = checked - started
            progress.phase, progress.done, progress.total = "Checking policies", 0, len(details)
            roles: dict[str, ScannedRole] = {}
            for detail in details:
                roles[detail.role.name.lower()] = check_role(detail, documents, self._account_id)
                progress.done += 1
            progress.checks_seconds = time.perf_counter() - checked
            managed = {
                document_digest(d.document): d.name for d in local if isinstance(d.document, dict)
            }
            with self._lock:
                self._result = ScanResult.of(roles, managed, datetime.now(UTC))
                self._documents = documents
                self._finished_clock = self._clock()
                changed, self._changed_during = self._changed_during, set()
            for name in sorted(changed):
                self._apply_change(name)
        except AwsError as exc:
            progress.error = f"{exc.message} ({exc.code})"
            log.warning("access scan failed: %s", exc)
        finally:
            progress.running = False

    # Changes -----------------------------------------------------------------------------

    def on_change(self, action: str, target: str | None) -> None:
        """After RoleDesk changed a role, re-read and re-check that role at once."""
        name = role_name_from_target(target)
        if name is None or not action.startswith("iam:"):
            return
        with self._lock:
            if self.progress.running:
                self._changed_during.add(name)
            if self._result is None:
                return
        self._apply_change(name)

    def _apply_change(self, name: str) -> None:
        try:
            updated = self._read_role(name)
        except AwsError:
            with self._lock:
                self._finished_clock = -self._ttl  # stale: the next visit scans again
            return
        with self._lock:
            result = self._result
            if result is None:
                return
            roles = dict(result.roles)
            if updated is None:
                roles.pop(name.lower(), None)
            else:
                roles[name.lower()] = updated
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
