"""The access review page's rows: the scan's roles with every finding, their review, filtered,
sorted and paged in memory (no AWS call, one database query for the reviews)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from app.review.findings import (
    KIND_LABELS,
    ReviewFinding,
    boundary_finding,
    inline_findings,
    overdue_finding,
    unused_finding,
)
from app.review.records import Review
from app.review.scan import ScannedRole, ScanResult
from app.web.paging import paged
from app.web.params import ascii_int

SORTS = ("name", "created", "last_used", "findings", "due")
REVIEW_STATES = {
    "": "Any",
    "never": "Never reviewed",
    "due": "Due in the next 30 days",
    "overdue": "Overdue",
    "current": "Reviewed, not due",
}
DUE_SOON_DAYS = 30
PER_PAGE_CHOICES = (25, 50, 100)


@dataclass(frozen=True)
class ReviewQuery:
    """The page's query string, every value checked; `errors` names the fields refused."""

    kind: str = ""
    review: str = ""
    q: str = ""
    days: int = 90
    sort: str = "name"
    order: str = "asc"
    page: int = 1
    per_page: int = 25
    default_days: int = 90

    def url(self, path: str = "/access-review", **changes: Any) -> str:
        values = {
            "kind": self.kind,
            "review": self.review,
            "q": self.q,
            "days": self.days if self.days != self.default_days else "",
            "sort": self.sort if self.sort != "name" else "",
            "order": self.order if self.order != "asc" else "",
            "page": self.page if self.page != 1 else "",
            "per_page": self.per_page if self.per_page != 25 else "",
            **changes,
        }
        query = urlencode({k: v for k, v in values.items() if v not in ("", None)})
        return f"{path}?{query}" if query else path

    def sort_url(self, key: str) -> str:
        flip = "desc" if self.sort == key and self.order == "asc" else "asc"
        return self.url(sort=key, order=flip, page="")


def parse_query(params: Mapping[str, str], default_days: int) -> tuple[ReviewQuery, dict[str, str]]:
    """(query, errors by field) from the request's query string."""
    errors: dict[str, str] = {}
    kind = params.get("kind", "")
    if kind and kind not in KIND_LABELS:
        errors["kind"] = "Choose one of the listed findings."
        kind = ""
    review = params.get("review", "")
    if review not in REVIEW_STATES:
        errors["review"] = "Choose one of the listed review states."
        review = ""
    q = params.get("q", "")
    if len(q) > 64:
        errors["q"] = "A role name has at most 64 characters."
        q = q[:64]
    days = default_days
    if params.get("days", "").strip():
        parsed = ascii_int(params["days"])
        if parsed is None or not 1 <= parsed <= 400:
            errors["days"] = "Enter a whole number of days from 1 to 400 (IAM tracks 400)."
        else:
            days = parsed
    sort = params.get("sort", "name") or "name"
    if sort not in SORTS:
        errors["sort"] = "Unknown sort order."
        sort = "name"
    order = "desc" if params.get("order") == "desc" else "asc"
    page = ascii_int(params.get("page")) or 1
    page = min(max(page, 1), 100_000)
    per_page = ascii_int(params.get("per_page")) or 25
    per_page = per_page if per_page in PER_PAGE_CHOICES else 25
    query = ReviewQuery(kind, review, q, days, sort, order, page, per_page, default_days)
    return query, errors


@dataclass(frozen=True)
class ReviewRow:
    scanned: ScannedRole
    findings: list[ReviewFinding]
    review: Review | None
    due: datetime | None  # None: never reviewed
    state: str  # never | due | overdue | current

    @property
    def name(self) -> str:
        return self.scanned.name

    @property
    def kinds(self) -> list[str]:
        return list(dict.fromkeys(f.kind for f in self.findings))


@dataclass(frozen=True)
class ReviewPage:
    rows: list[ReviewRow]
    total: int
    matching: int
    page: int
    pages: int
    per_page: int
    counts: dict[str, int]  # roles with each finding kind, over every role
    state_counts: dict[str, int]


def _state(due: datetime | None, now: datetime) -> str:
    if due is None:
        return "never"
    if due < now:
        return "overdue"
    if due < now + timedelta(days=DUE_SOON_DAYS):
        return "due"
    return "current"


def build_row(
    scanned: ScannedRole, result: ScanResult, review: Review | None, now: datetime, days: int
) -> ReviewRow:
    role = scanned.role
    found: list[ReviewFinding] = []
    if (unused := unused_finding(role, now, days)) is not None:
        found.append(unused)
    found.extend(scanned.checked)
    found.extend(
        inline_findings(scanned.inline_digests, result.inline_counts, result.managed_digests)
    )
    if (boundary := boundary_finding(role, result.uses_boundaries)) is not None:
        found.append(boundary)
    due = review.due_at if review else None
    if (overdue := overdue_finding(due, now)) is not None:
        found.append(overdue)
    return ReviewRow(scanned, found, review, due, _state(due, now))


def _kinds(
    scanned: ScannedRole,
    static: frozenset[str],
    review: Review | None,
    now_ts: float,
    cutoff: float,
) -> tuple[frozenset[str], str]:
    """(finding kinds, review state) of a role, by comparing numbers: the same rules as
    `build_row`, without writing the findings out."""
    kinds = static
    if scanned.activity_key is not None and scanned.activity_key < cutoff:
        kinds = kinds | {"unused"}
    due = review.due_at.timestamp() if review else None
    if due is None:
        state = "never"
    elif due < now_ts:
        state = "overdue"
        kinds = kinds | {"overdue"}
    else:
        state = "due" if due < now_ts + DUE_SOON_DAYS * 86400 else "current"
    return kinds, state


Found = tuple[ScannedRole, frozenset[str], str]
Entry = tuple[str, ScannedRole, frozenset[str], str]


@dataclass
class _Classified:
    """Every role's finding kinds and review state as of one moment, valid for every moment
    in (since, until]: the clock enters the rules only as "now is after a role's last activity
    plus N days", "after its due date" and "after its due date less 30 days", so between two
    such instants no role's kinds or state can change."""

    result: ScanResult
    reviews: Mapping[str, Review]
    days: int
    since: float
    until: float
    roles: list[Entry]
    counts: dict[str, int]
    state_counts: dict[str, int]
    # Each sort's order of `roles` (ascending), worked out on the first request that asks.
    orders: dict[str, list[Entry]] = field(default_factory=dict)

    def holds(
        self, result: ScanResult, reviews: Mapping[str, Review], days: int, now_ts: float
    ) -> bool:
        return (
            self.result is result
            and self.reviews is reviews
            and self.days == days
            and self.since < now_ts <= self.until
        )

    def ordered(self, sort: str) -> list[Entry]:
        order = self.orders.get(sort)
        if order is None:
            order = self.orders[sort] = sorted(self.roles, key=_sort_key(sort, self.reviews))
        return order


# The last classification (requests of one view share it until a role's state changes).
_last: _Classified | None = None


def _classify(
    result: ScanResult, reviews: Mapping[str, Review], days: int, now: datetime
) -> _Classified:
    """Every role's finding kinds and review state for the scan, reviews and days, reused
    until the moment one of them would change."""
    global _last
    now_ts = now.timestamp()
    last = _last
    if last is not None and last.holds(result, reviews, days, now_ts):
        return last
    window = days * 86400
    cutoff = now_ts - window
    soon = DUE_SOON_DAYS * 86400
    since, until = float("-inf"), float("inf")
    counts = {k: 0 for k in KIND_LABELS}
    state_counts = {k: 0 for k in REVIEW_STATES if k}
    roles: list[Entry] = []
    empty: frozenset[str] = frozenset()
    for key, scanned in result.roles.items():
        review = reviews.get(scanned.name)
        kinds, state = _kinds(scanned, result.static_kinds.get(key, empty), review, now_ts, cutoff)
        # The instants at which this role's kinds or state change (now passes them).
        bounds = []
        if scanned.activity_key is not None:
            bounds.append(scanned.activity_key + window)
        if review is not None:
            due = review.due_at.timestamp()
            bounds += (due, due - soon)
        for bound in bounds:
            if bound < now_ts:
                since = max(since, bound)
            elif bound < until:
                until = bound
        for kind in kinds:
            counts[kind] += 1
        state_counts[state] += 1
        roles.append((key, scanned, kinds, state))
    _last = _Classified(result, reviews, days, since, until, roles, counts, state_counts)
    return _last


def review_page(
    result: ScanResult, reviews: Mapping[str, Review], query: ReviewQuery, now: datetime
) -> ReviewPage:
    """One page of the review: filtering walks the classified roles in the sort's
    precomputed order, and only the rows shown have their findings written out."""
    classified = _classify(result, reviews, query.days, now)
    needle = query.q.strip().lower()
    kind, state = query.kind, query.review
    order = classified.ordered(query.sort)
    if query.order == "desc":
        order = order[::-1]
    found: list[Found] = [
        (scanned, kinds, st)
        for key, scanned, kinds, st in order
        if (not kind or kind in kinds)
        and (not state or st == state)
        and (not needle or needle in key)
    ]
    shown, page, pages = paged(found, query.page, query.per_page)
    rows = [build_row(s, result, reviews.get(s.name), now, query.days) for s, _, _ in shown]
    return ReviewPage(
        rows,
        len(result.roles),
        len(found),
        page,
        pages,
        query.per_page,
        classified.counts,
        classified.state_counts,
    )


def _sort_key(sort: str, reviews: Mapping[str, Review]) -> Callable[[Entry], Any]:
    """Ascending keys, each ending with the name so that the order is total (descending is
    then the exact reverse)."""
    if sort == "created":
        return lambda r: (r[1].created_key, r[1].name_key)
    if sort == "last_used":
        return lambda r: (r[1].last_used_key, r[1].name_key)
    if sort == "findings":
        # By how many kinds of finding the role has.
        return lambda r: (len(r[2]), r[1].name_key)
    if sort == "due":
        # Never reviewed first (most in need), then by due date.
        def due(r: Entry) -> tuple[bool, float, str]:
            review = reviews.get(r[1].name)
            return (review is not None, review.due_at.timestamp() if review else 0.0, r[1].name_key)

        return due
    return lambda r: r[1].name_key
