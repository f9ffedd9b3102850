"""Reading the ledger as events for the history page, the role Activity section and export.

An event is its `intent` (or `record`) entry plus its latest `outcome` entry; its number is the
intent's seq. Its current outcome, actor, action and target are copied into the derived
`audit_event_status` index table, whose composite indexes serve every filter combination:
each filtered page is one index range scan, keyset-paginated on seq (no OFFSET), fast at a
million entries. Free-text search on PostgreSQL uses the derived table's `search` column with
its word and trigram indexes (app.audit.search) over the whole history; on SQLite, and for
terms shorter than the trigram index's three-character grams, it cannot use an index, so each
page of it looks at a bounded window of entries and offers to continue further back (see
`SEARCH_WINDOW`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    cast,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import Session, aliased

from app.audit.common_words import common_words
from app.audit.search import MIN_INDEXED_TERM, SEARCH_WORDS, term_pattern, word_query
from app.db import Database
from app.models import AuditEvent, AuditEventStatus

OUTCOMES = ("pending", "succeeded", "failed", "unknown")
PAGE_SIZE = 50
# Entries a text search looks through per page; a page is then bounded whatever the term.
SEARCH_WINDOW = 5_000
NOTHING_AFTER = 2**62


@dataclass(frozen=True)
class EventRow:
    """One event as the history lists it."""

    seq: int
    event_id: str
    kind: str
    recorded_at: datetime
    operation_id: str | None
    actor: str
    source_ip: str | None
    account_id: str | None
    region: str | None
    action: str
    target: str | None
    outcome: str
    outcome_seq: int | None
    completed_at: datetime | None
    aws_request_id: str | None
    error_code: str | None
    error_message: str | None


# Every column of a listed event, named as EventRow's fields, from the status table alone
# (migration 0013_status_page_columns): a page reads its rows in seq order, without looking up
# the ledger's intent and outcome entries of each event.
EVENT_COLUMNS = tuple(getattr(AuditEventStatus, f.name) for f in fields(EventRow))


@dataclass(frozen=True)
class AuditFilters:
    """The history's filters, already validated (see app.audit.forms)."""

    actor: str = ""
    action: str = ""
    outcome: str = ""
    target: str = ""
    since: datetime | None = None
    until: datetime | None = None
    q: str = ""
    operation_id: str = ""
    account: str = ""  # the AWS account the call went to (issue 17)

    @property
    def active(self) -> bool:
        return any(
            (
                self.actor,
                self.action,
                self.outcome,
                self.target,
                self.q,
                self.operation_id,
                self.account,
            )
        ) or bool(self.since or self.until)


@dataclass(frozen=True)
class EventPage:
    rows: list[EventRow]
    older: int | None  # pass as `before` for the next (older) page
    newer: int | None  # pass as `after` for the previous (newer) page
    searched_down_to: int | None = None  # set when a text search stopped at its window


def _events() -> Select[Any]:
    """Event rows: each event's columns and its current outcome, as the status table holds
    them."""
    return select(*EVENT_COLUMNS)


_Status2 = aliased(AuditEventStatus, name="status_q")


def _text_match(pattern: str) -> ColumnElement[bool]:
    """The event's own columns, or its latest outcome's request id and error (copied into
    its status row), contain it."""
    own = [
        column.ilike(pattern, escape="\\")
        for column in (
            AuditEvent.actor,
            AuditEvent.action,
            AuditEvent.target,
            AuditEvent.event_id,
            AuditEvent.operation_id,
            cast(AuditEvent.params, String),
        )
    ]
    outcome = (_Status2.aws_request_id, _Status2.error_code, _Status2.error_message)
    in_outcome = (
        select(_Status2.seq)
        .where(
            _Status2.seq == AuditEvent.seq,
            or_(*(column.ilike(pattern, escape="\\") for column in outcome)),
        )
        .correlate(AuditEvent)
        .exists()
    )
    return or_(*own, in_outcome)


def windowed(filters: AuditFilters, indexed_search: bool) -> bool:
    """True when text search must walk a bounded window of the ledger: no trigram index
    (SQLite), or a term too short for one."""
    return bool(filters.q) and not (indexed_search and len(filters.q) >= MIN_INDEXED_TERM)


def _ledger_text(filters: AuditFilters, indexed_search: bool) -> bool:
    """True when text search reads the ledger's own columns (SQLite, where the search column
    has no index); PostgreSQL's windowed search reads the search column."""
    return windowed(filters, indexed_search) and not indexed_search


def _indexed_text(term: str, common: frozenset[str] | None) -> ColumnElement[bool]:
    """The search column contains `term`, through PostgreSQL's word index when the term has
    a word it can look up (app.audit.search.word_query), else through the trigram index.

    A role name like `role-00042` is made of trigrams that nearly every event has (`rol`,
    ` 00`, and digits of the account id), so the trigram index reads posting lists of most
    of the table and rechecks thousands of false candidates; the word `00042` (a prefix
    query) is in about as many events as the term. `LIKE` still decides, kept off the
    trigram index (`search || ''`) so the planner does not intersect the two. `common`: the
    words too common to look up (None: no word index)."""
    pattern = term_pattern(term)
    if pattern is None:
        return false()
    query = None if common is None else word_query(term, common)
    search = AuditEventStatus.search
    if query is None:
        return search.like(pattern, escape="\\")
    return and_(
        SEARCH_WORDS.op("@@")(cast(query, TSQUERY)),
        search.concat("").like(pattern, escape="\\"),
    )


def _index_conditions(
    filters: AuditFilters,
    role_arns: dict[str, str],
    indexed_search: bool = False,
    common: frozenset[str] | None = None,
) -> list[Any]:
    """Conditions the derived index table answers (actor, action, outcome, target, operation,
    time, account, and text on PostgreSQL)."""
    status = AuditEventStatus
    found: list[Any] = []
    if filters.q and not windowed(filters, indexed_search):
        found.append(_indexed_text(filters.q, common))
    elif filters.q and indexed_search:
        # Too short for either index: tested row by row within the window, on the one
        # column (kept off the trigram index, which cannot serve it).
        pattern = term_pattern(filters.q)
        found.append(
            false() if pattern is None else status.search.concat("").like(pattern, escape="\\")
        )
    # Time and account from the event's copies of its entry's (the seq bounds from
    # `_seq_bounds` narrow the walk to the time range first).
    if filters.since:
        found.append(status.recorded_at >= filters.since)
    if filters.until:
        found.append(status.recorded_at < filters.until)
    if filters.account:
        found.append(status.account_id == filters.account)
    for column, value in (
        (status.actor, filters.actor),
        (status.action, filters.action),
        (status.outcome, filters.outcome),
    ):
        if value:
            # A target (one role's events) is narrower than any combination of the others:
            # `column || ''` keeps those off the index, so the planner walks (target, seq).
            found.append((column.concat("") if filters.target else column) == value)
    if filters.target:
        found.append(status.target.in_(sorted({filters.target, *role_arns.values()})))
    if filters.operation_id:
        found.append(_of_operation(filters.operation_id))
    return found


def _of_operation(operation_id: str) -> ColumnElement[bool]:
    """The event is a step of the operation: found through the ledger's index on
    operation_id (the status table has none)."""
    steps = select(AuditEvent.seq).where(AuditEvent.operation_id == operation_id)
    return KEY.in_(steps.scalar_subquery())


def _matching(
    filters: AuditFilters,
    role_arns: dict[str, str],
    indexed_search: bool = False,
    common: frozenset[str] | None = None,
) -> Select[Any]:
    """The seqs of matching events, keyed on `key_for(filters, indexed_search)`.

    From the derived index table: its equality filters match the leading columns of one
    (filters..., seq) index, so the database walks that index newest first and stops after a
    page, whatever the combination and however rare it is; on PostgreSQL text search is one
    more condition there (its trigram index, or the walk, whichever the planner finds
    cheaper). Windowed text search on SQLite reads the ledger's own columns within a bounded
    window, so there the ledger leads and the index table is looked up per entry.
    """
    status = AuditEventStatus
    indexed = _index_conditions(filters, role_arns, indexed_search, common)
    if _ledger_text(filters, indexed_search):
        # An event's request parameters are only in its ledger entry; the search window
        # narrows the walk.
        text = _text_match(f"%{_escape_like(filters.q)}%")
        query = select(AuditEvent.seq).where(AuditEvent.kind.in_(("intent", "record")), text)
        if indexed:
            query = query.where(
                select(status.seq)
                .where(status.seq == AuditEvent.seq, *indexed)
                .correlate(AuditEvent)
                .exists()
            )
        return query
    return select(status.seq).where(*indexed)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _seq_bounds(session: Session, filters: AuditFilters) -> tuple[int | None, int | None]:
    """Time bounds as seq bounds, through the recorded_at index, so the scan stays on seq.

    Entries are timed under the chain lock, so time grows with seq; the recorded_at
    conditions stay in the query as well, so this only narrows the scan.
    """
    low = high = None
    if filters.since:
        low = session.scalar(
            select(AuditEvent.seq)
            .where(AuditEvent.recorded_at >= filters.since)
            .order_by(AuditEvent.recorded_at)
            .limit(1)
        )
        low = low if low is not None else NOTHING_AFTER  # nothing that recent
    if filters.until:
        high = session.scalar(
            select(AuditEvent.seq)
            .where(AuditEvent.recorded_at < filters.until)
            .order_by(AuditEvent.recorded_at.desc())
            .limit(1)
        )
        high = high if high is not None else 0
    return low, high


# Pages are keyed on the derived index's seq (the event's intent or record seq).
KEY = AuditEventStatus.seq


def key_for(filters: AuditFilters, indexed_search: bool = False) -> Any:
    """The seq column `_matching` selects and pages on: the ledger's for windowed search."""
    return AuditEvent.seq if _ledger_text(filters, indexed_search) else KEY


def _fetch(
    session: Session, matching: Select[Any], key: Any, limit: int, *, asc: bool
) -> list[EventRow]:
    """Up to `limit + 1` events: the page of seqs first, then their columns."""
    seqs = matching.order_by(key.asc() if asc else key.desc()).limit(limit + 1)
    query = _events().where(KEY.in_(seqs.scalar_subquery()))
    order = KEY.asc() if asc else KEY.desc()
    # Columns, not entities: run as Core on the session's connection, without the ORM's
    # per-statement compile state (a page's rows are plain values).
    rows = session.connection().execute(query.order_by(order))
    return [EventRow(**row._mapping) for row in rows]


# Events an indexed text search first walks, newest first, along its filters' own index,
# before leaving the choice of plan to PostgreSQL (see _walk_first).
TEXT_WALK_ROWS = 2_000


def _walk_first(session: Session, plain: Select[Any], term: str, limit: int) -> list[int] | None:
    """The seqs of the first `limit + 1` events matching `term`, found by walking `plain`
    (the other filters) newest first through at most TEXT_WALK_ROWS events; None when that
    walk found neither a page nor the end.

    PostgreSQL's planner takes text and filters as independent: for a term that goes with a
    filter (an error message and outcome=failed) it expects a handful of matches and reads
    both indexes in full (hundreds of ms at a million events) where walking the filter's
    index finds a page in a few hundred rows. A common term also finds its page here; a
    rare one falls through to the planner (the trigram index) after a bounded walk.
    """
    pattern = term_pattern(term)
    if pattern is None:
        return []
    # Each walked event numbered newest first; the walk's last event (number TEXT_WALK_ROWS)
    # comes out too, match or not, so one query tells both the matches and whether the walk
    # reached its end (it used to count the walk again in a second query).
    walk = (
        plain.add_columns(
            AuditEventStatus.search.like(pattern, escape="\\").label("hit"),
            func.row_number().over(order_by=KEY.desc()).label("walked"),
        )
        .order_by(KEY.desc())
        .limit(TEXT_WALK_ROWS)
        .subquery()
    )
    found = session.execute(
        select(walk.c.seq, walk.c.hit, walk.c.walked)
        .where(or_(walk.c.hit, walk.c.walked == TEXT_WALK_ROWS))
        .order_by(walk.c.seq.desc())
        .limit(limit + 2)  # the walk stops as soon as a page (and one more) is found
    ).all()
    matches = [row.seq for row in found if row.hit]
    if len(matches) > limit:
        return matches[: limit + 1]
    walked_all = any(row.walked == TEXT_WALK_ROWS for row in found)
    return None if walked_all else matches


# The seqs a text search that the word index answers looks through first, newest first
# (migration 0011_status_seq_brin). Each further range is sized from the matches found so far
# to hold the rest of the page with NEWEST_MARGIN to spare, or NEWEST_GROWTH times longer
# when none were found.
NEWEST_SPAN = 32_768
NEWEST_GROWTH = 8
NEWEST_MARGIN = 1.5


def _newest_first(
    session: Session, matching: Select[Any], limit: int, top: int, bottom: int
) -> list[EventRow]:
    """Up to `limit + 1` events of `matching` with seqs in [bottom, top), newest first, asked
    range by range from the newest: the same rows as one query over the whole interval.

    A word (a role's name) can be in thousands of events; one query must read every match's
    heap block to know the newest ones (1,000-1,700 blocks, from disk when not cached). Asked
    for a range of seqs, PostgreSQL ANDs the word index's bitmap with the BRIN index on seq
    and reads only that range's blocks. Each match in a range costs a block read, so the next
    range is as long as the matches so far say the rest of the page needs (a fixed growth read
    three times the blocks the page needed); a rare word costs a query or two more: one
    statement, built once, with the range as its parameters."""
    in_range = matching.where(KEY.between(bindparam("range_low"), bindparam("range_last")))
    # The page's columns come out of the range's own scan of the status table, which holds
    # them all: a matching event costs its row's block, not two more ledger look-ups.
    query = in_range.with_only_columns(*EVENT_COLUMNS).order_by(KEY.desc()).limit(limit + 1)
    rows: list[EventRow] = []
    span, high = NEWEST_SPAN, top
    while high > bottom and len(rows) <= limit:
        low = max(high - span, bottom)
        result = session.execute(query, {"range_low": low, "range_last": high - 1})
        rows += [EventRow(**row._mapping) for row in result]
        span, high = _next_span(span, top - low, len(rows), limit + 1 - len(rows)), low
    return rows[: limit + 1]


def _next_span(span: int, searched: int, found: int, wanted: int) -> int:
    """The next range's length, after `found` matches in the `searched` seqs so far (the last
    range `span` long), with `wanted` more to find: as many seqs as the matches so far say
    those need, with NEWEST_MARGIN to spare, or NEWEST_GROWTH times the last when none."""
    if found:
        return math.ceil(wanted * searched / found * NEWEST_MARGIN)
    return span * NEWEST_GROWTH


def _exists(session: Session, matching: Select[Any]) -> bool:
    return session.execute(matching.limit(1)).first() is not None


# The ledger's newest seq (the chain status beside every history page).
_HEAD_SEQ = select(func.max(AuditEvent.seq))


class AuditQueries:
    """Read-only queries over the ledger."""

    def __init__(self, db: Database, account_id: str | None = None) -> None:
        self._db = db
        self._account_id = account_id
        # PostgreSQL has the trigram index on the search column (migration 0006).
        self._indexed_search = not db.is_sqlite
        # ...and the word index (migration 0009_search_words).
        self._word_index = not db.is_sqlite

    def _walk_first(self, filters: AuditFilters) -> bool:
        """Whether a text search first walks the newest events (see `_walk_first`): not when
        the word index answers it, as every word it looks up is in at most 1 % of events
        (app.audit.common_words), so the index's matches are few whatever the filters."""
        if not filters.q or windowed(filters, self._indexed_search):
            return False
        return not self._word_indexed(filters)

    def _word_indexed(self, filters: AuditFilters) -> bool:
        """Whether the word index answers the text search (`_indexed_text`)."""
        if not filters.q or windowed(filters, self._indexed_search):
            return False
        common = self._common_words()
        return common is not None and word_query(filters.q, common) is not None

    def _common_words(self) -> frozenset[str] | None:
        """Words the word index is not asked for; None when it is not used."""
        return common_words(self._db) if self._word_index else None

    def _role_arns(self, target: str) -> dict[str, str]:
        """A plain role name also matches the role's ARN (new entries record ARNs)."""
        if not target or ":" in target or "/" in target or not self._account_id:
            return {}
        return {target: f"arn:aws:iam::{self._account_id}:role/{target}"}

    def page(
        self,
        filters: AuditFilters,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = PAGE_SIZE,
    ) -> EventPage:
        """Newest first; `before` pages to older events, `after` to newer ones."""
        with self._db.sessions() as session:
            return self._page(session, filters, before, after, limit, None)

    def page_and_head(
        self,
        filters: AuditFilters,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = PAGE_SIZE,
    ) -> tuple[EventPage, int]:
        """The page, and the ledger's newest seq (the chain status beside it), read in one
        session: the history page used to take a second connection from the pool for the
        head (a liveness ping, the query, a rollback)."""
        with self._db.sessions() as session:
            head_seq = self._head_seq(session)
            return self._page(session, filters, before, after, limit, head_seq), head_seq

    def _page(
        self,
        session: Session,
        filters: AuditFilters,
        before: int | None,
        after: int | None,
        limit: int,
        head_seq: int | None,
    ) -> EventPage:
        key = key_for(filters, self._indexed_search)
        matching = _matching(
            filters, self._role_arns(filters.target), self._indexed_search, self._common_words()
        )
        low, high = _seq_bounds(session, filters)
        if low is not None:
            matching = matching.where(key >= low)
        if high is not None:
            matching = matching.where(key <= high)
        window_floor = None
        if windowed(filters, self._indexed_search) and after is None:
            newest = head_seq if head_seq is not None else self._head_seq(session)
            top = before if before is not None else newest + 1
            window_floor = max(top - SEARCH_WINDOW, 0)
            matching = matching.where(key >= window_floor)
        if after is not None:
            rows = _fetch(session, matching.where(key > after), key, limit, asc=True)
            has_newer = len(rows) > limit
            rows = list(reversed(rows[:limit]))
            has_older = bool(rows) and _exists(session, matching.where(key < rows[-1].seq))
        else:
            cursor = matching.where(key < before) if before is not None else matching
            walked = None
            if self._walk_first(filters):
                plain = _matching(replace(filters, q=""), self._role_arns(filters.target))
                bounds = [(key >= low) if low is not None else None]
                bounds += [(key <= high) if high is not None else None]
                bounds += [(key < before) if before is not None else None]
                plain = plain.where(*(b for b in bounds if b is not None))
                walked = _walk_first(session, plain, filters.q, limit)
            if walked is not None:
                rows = _fetch(session, select(KEY).where(KEY.in_(walked)), KEY, limit, asc=False)
            elif self._word_indexed(filters):
                newest = head_seq if head_seq is not None else self._head_seq(session)
                top = min(newest + 1, before if before is not None else newest + 1)
                top = min(top, high + 1) if high is not None else top
                rows = _newest_first(session, cursor, limit, top, low or 0)
            else:
                rows = _fetch(session, cursor, key, limit, asc=False)
            has_older = len(rows) > limit
            rows = rows[:limit]
            has_newer = (
                before is not None
                and bool(rows)
                and _exists(session, matching.where(key > rows[0].seq))
            )
        page = EventPage(
            rows,
            rows[-1].seq if rows and has_older else None,
            rows[0].seq if rows and has_newer else None,
        )
        if window_floor and not has_older and window_floor > (low or 0):
            return replace(page, older=window_floor, searched_down_to=window_floor)
        return page

    @staticmethod
    def _head_seq(session: Session) -> int:
        return int(session.connection().scalar(_HEAD_SEQ) or 0)

    def stream(self, filters: AuditFilters, batch: int = 1000) -> Iterator[EventRow]:
        """Every event the filters match, newest first, fetched `batch` at a time (keyset)."""
        before: int | None = None
        while True:
            key = key_for(filters, self._indexed_search)
            with self._db.sessions() as session:
                matching = _matching(
                    filters,
                    self._role_arns(filters.target),
                    self._indexed_search,
                    self._common_words(),
                )
                if before is not None:
                    matching = matching.where(key < before)
                rows = _fetch(session, matching, key, batch - 1, asc=False)
            yield from rows
            if len(rows) < batch:
                return
            before = rows[-1].seq

    def operation(self, operation_id: str) -> list[EventRow]:
        """The steps of one operation (wizard run, bulk action), in the order they ran."""
        with self._db.sessions() as session:
            query = _events().where(_of_operation(operation_id)).order_by(KEY)
            return [EventRow(**r._mapping) for r in session.execute(query)]

    def entries_of(self, seq: int) -> list[AuditEvent]:
        """The ledger entries of the event numbered `seq` (its intent, then its outcomes);
        empty when there is none. An outcome entry's seq leads to its whole event too."""
        with self._db.sessions() as session:
            entry = session.get(AuditEvent, seq)
            if entry is None:
                return []
            return list(
                session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.event_id == entry.event_id)
                    .order_by(AuditEvent.seq)
                )
            )

    def for_target(self, targets: list[str], limit: int = 20) -> list[EventRow]:
        """The newest events whose target is one of `targets` (a role's ARN and name)."""
        with self._db.sessions() as session:
            matching = select(KEY).where(AuditEventStatus.target.in_(targets))
            return _fetch(session, matching, KEY, limit - 1, asc=False)

    def head(self) -> tuple[int, str | None]:
        with self._db.sessions() as session:
            row = session.execute(
                select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
            ).first()
        return (int(row[0]), str(row[1])) if row else (0, None)
