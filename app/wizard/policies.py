"""Managed policies for step 2, held in memory so search answers in well under 20 ms.

All AWS managed policies (1,582 in the sandbox) and the account's customer managed policies
are listed once through the gateway (ListPolicies, all pages), on first use; "Reload policies"
lists them again. Search is a substring match over precomputed lower-case names, so it never
calls AWS. Documents are fetched only when someone opens one (GetPolicy + GetPolicyVersion).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from app.aws.iam import IamGateway
from app.aws.types import ManagedPolicy
from app.policy.managed_descriptions import describe
from app.web.paging import paged

KINDS: dict[str, str] = {
    "all": "All types",
    "aws": "AWS managed",
    "job": "AWS managed - job function",
    "customer": "Customer managed",
}
PER_PAGE = 20


def kind_of(policy: ManagedPolicy) -> str:
    if policy.is_job_function:
        return "job"
    return "aws" if policy.is_aws_managed else "customer"


def _described(policy: ManagedPolicy) -> ManagedPolicy:
    """The policy with AWS's description of it where AWS's answer left it out."""
    if policy.description or not policy.is_aws_managed:
        return policy
    found = describe(policy.arn)
    return replace(policy, description=found) if found else policy


@dataclass(frozen=True)
class PolicyPage:
    rows: list[ManagedPolicy]
    matching: int
    total: int
    page: int
    pages: int
    loaded_at: datetime


class PolicyIndex:
    def __init__(self, iam: IamGateway, clock: Callable[[], float] = time.perf_counter) -> None:
        self._iam = iam
        self._clock = clock
        self._rows: list[tuple[str, str, ManagedPolicy]] | None = None  # (lower name, kind, p)
        self._by_arn: dict[str, ManagedPolicy] = {}
        self._by_kind: dict[str, list[ManagedPolicy]] = {}  # "all" too: browsing copies nothing
        self._loaded_at = datetime.now(UTC)
        self._lock = threading.Lock()
        self.last_search_seconds = 0.0

    def reload(self) -> None:
        policies = sorted(
            (_described(p) for p in self._iam.list_policies("All")), key=lambda p: p.name.lower()
        )
        rows = [(p.name.lower(), kind_of(p), p) for p in policies]
        by_kind: dict[str, list[ManagedPolicy]] = {key: [] for key in KINDS}
        by_kind["all"] = policies
        for _, kind, policy in rows:
            by_kind[kind].append(policy)
        with self._lock:
            self._by_kind = by_kind
            self._rows = rows
            self._by_arn = {p.arn: p for p in policies}
            self._loaded_at = datetime.now(UTC)

    def _ensure(self) -> list[tuple[str, str, ManagedPolicy]]:
        if self._rows is None:
            with self._lock:
                loaded = self._rows is not None
            if not loaded:
                self.reload()
        assert self._rows is not None
        return self._rows

    def get(self, arn: str) -> ManagedPolicy | None:
        self._ensure()
        return self._by_arn.get(arn)

    def search(self, query: str = "", kind: str = "all", page: int = 1) -> PolicyPage:
        rows = self._ensure()
        started = self._clock()
        needle = query.strip().lower()
        found: list[ManagedPolicy]
        if not needle:  # browsing (the step's first view): a page of the kind's list
            found = self._by_kind.get(kind, [])
        else:
            found = [p for name, k, p in rows if (kind == "all" or k == kind) and needle in name]
            # names starting with the query first, as people expect
            found.sort(key=lambda p: not p.name.lower().startswith(needle))
        shown, page, pages = paged(found, page, PER_PAGE)
        self.last_search_seconds = self._clock() - started
        return PolicyPage(
            rows=shown,
            matching=len(found),
            total=len(rows),
            page=page,
            pages=pages,
            loaded_at=self._loaded_at,
        )
