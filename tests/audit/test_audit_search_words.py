"""Audit text search against a brute-force scan, on SQLite and PostgreSQL, with generated
values and terms: whatever path answers a term (PostgreSQL's word index, its trigram index,
the walk first, SQLite's window), a search finds exactly the events one of whose fields
contains the term, ignoring case. And the word index's query for a term, checked directly:
every text containing the term has its words."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, text

from app import migrate
from app.audit import common_words as common_words_module
from app.audit import query as audit_query
from app.audit.common_words import common_words
from app.audit.log import AuditLog
from app.audit.query import AuditFilters, AuditQueries
from app.audit.search import SEPARATOR, WORD, word_query
from app.db import Database
from app.models import AuditEvent
from tests.audit.helpers import change

# Letters, digits and the punctuation of ARNs, role names and JSON, in few enough kinds that
# generated terms often occur in generated values, across word boundaries included.
ALPHABET = "aB0-1_:/ .%\\é"
VALUE = st.text(alphabet=ALPHABET, min_size=0, max_size=14)
TERM = st.text(alphabet=ALPHABET, min_size=1, max_size=6)


def brute_force(db: Database, term: str) -> list[int]:
    """Events (newest first) one of whose searchable fields contains the term, from the
    ledger's own columns, read without the search column or any index."""
    with db.sessions() as session:
        entries = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    events: dict[str, tuple[int, list[str]]] = {}
    for entry in entries:
        if entry.kind == "outcome":
            # The latest outcome's fields (an event here has at most one).
            events[entry.event_id][1].extend(
                [
                    entry.aws_request_id or "",
                    entry.error_code or "",
                    entry.error_message or "",
                ]
            )
            continue
        params = "" if entry.params is None else json.dumps(entry.params)
        fields = [entry.actor, entry.action, entry.target or "", entry.event_id]
        events[entry.event_id] = (entry.seq, [*fields, entry.operation_id or "", params])
    needle = term.lower()
    hits = [seq for seq, fields in events.values() if any(needle in f.lower() for f in fields)]
    return sorted(hits, reverse=True)


def searched(db: Database, term: str) -> list[int]:
    """Every event the history finds for the term, page after page (older pages of a
    window included)."""
    queries, seen, before = AuditQueries(db), [], None
    for _ in range(50):
        page = queries.page(AuditFilters(q=term), before=before, limit=7)
        seen += [r.seq for r in page.rows]
        if page.older is None:
            return seen
        before = page.older
    raise AssertionError("more pages than events")


CUT = st.tuples(st.integers(0, 3), st.integers(0, 14), st.integers(1, 12))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.lists(st.tuples(VALUE, VALUE, VALUE, CUT), min_size=1, max_size=3),
    free_terms=st.lists(TERM, min_size=1, max_size=3),
    walk=st.sampled_from([1, 3, 5_000]),
    span=st.sampled_from([1, 3, 65_536]),
)
def test_search_finds_exactly_what_a_scan_finds(
    db, log, values, free_terms, walk, span, monkeypatch
):
    """Generated role names, messages and parameters; terms generated freely and cut from
    them. The walk first is made short or long, so both it and the indexes answer, and the
    word index's newest range small or large, so its searches go range by range or not."""
    terms = list(free_terms)
    for role, message, note, (which, start, length) in values:
        change(
            log,
            action="iam:PutRolePolicy",
            target=f"arn:aws:iam::123456789012:role/{role}",
            params={"role_name": role, "note": note},
            outcome="failed",
            error_code="X",
            error_message=message,
        )
        text = [role, message, note, f"role/{role}"][which]
        terms.append(text[start:][:length])
    with monkeypatch.context() as patch:
        patch.setattr(audit_query, "TEXT_WALK_ROWS", walk)
        patch.setattr(audit_query, "NEWEST_SPAN", span)
        patch.setattr(audit_query, "NEWEST_GROWTH", 2)
        for term in terms:
            if not term.strip() or SEPARATOR in term:
                continue  # the form refuses a blank term; the separator matches nothing
            assert searched(db, term) == brute_force(db, term), term


def _words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def _satisfies(query: str, words: set[str]) -> bool:
    for part in query.split(" & "):
        word = part.strip("'").removesuffix("':*")
        if part.endswith(":*") and not any(w.startswith(word) for w in words):
            return False
        if not part.endswith(":*") and word not in words:
            return False
    return True


@given(
    before=st.text(alphabet=ALPHABET, max_size=5),
    term=st.text(alphabet=ALPHABET, min_size=1, max_size=10),
    after=st.text(alphabet=ALPHABET, max_size=5),
)
def test_any_text_containing_a_term_has_the_words_its_query_asks_for(before, term, after):
    query = word_query(term)
    if query is not None:
        assert re.fullmatch(r"'[a-z0-9]+'(:\*)?( & '[a-z0-9]+'(:\*)?)*", query), query
        assert _satisfies(query, _words(before + term + after)), (before, term, after, query)


@pytest.mark.parametrize(
    ("term", "query"),
    [
        ("role-00042", "'00042':*"),  # `role` may end a longer word: not looked up
        ("/role-00042", "'role' & '00042':*"),
        ("cannot be found", "'be' & 'found':*"),
        ("00042", None),  # one word, maybe inside a longer one: the trigram index's
        ("-Web_App ", "'web' & 'app'"),
        ("é", None),
    ],
)
def test_word_query_of_typical_terms(term, query):
    assert word_query(term) == query


def test_words_too_common_to_narrow_a_search_are_not_looked_up():
    common = frozenset({"aws", "iam", "123456789012", "role"})
    assert word_query("arn:aws:iam::123456789012:role/Web", common) == "'web':*"
    assert word_query(":aws:iam:", common) is None  # nothing left: the trigram index's


def test_common_words_come_from_the_planners_statistics(postgres_url, monkeypatch):
    monkeypatch.setattr(common_words_module, "COMMON", 0.5)  # 30 events: 1 in 30 is 3 %
    migrate.upgrade(postgres_url)
    db = Database(postgres_url)
    try:
        log = AuditLog(db)
        for i in range(30):
            change(log, action="iam:CreateRole", target=f"arn:aws:iam::1:role/r{i}-{i * 7919}")
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE audit_event_status"))
        words = common_words(db)
        assert {"iam", "createrole", "role"} <= words
        assert not {"r7", "55433"} & words  # in one event of the 30
    finally:
        db.dispose()


@pytest.mark.parametrize("span", [1, 2, 5, 65_536])
def test_a_word_search_asked_range_by_range_finds_every_match_in_order(db, log, span, monkeypatch):
    """A term the word index answers is asked newest range first (migration 0011); however
    the ranges fall, page after page holds exactly the scan's events, newest first, none
    twice and none left out at a range's edge."""
    for number in range(40):
        role = "build-agent-7" if number % 3 else f"other-{number}"
        change(
            log,
            action="iam:TagRole",
            target=f"arn:aws:iam::123456789012:role/{role}",
            params={"role_name": role},
        )
    term = "role/build-agent"
    if db.engine.dialect.name == "postgresql":
        assert word_query(term) is not None  # the word index answers it there
    monkeypatch.setattr(audit_query, "NEWEST_SPAN", span)
    monkeypatch.setattr(audit_query, "NEWEST_GROWTH", 2)
    expected = brute_force(db, term)
    assert len(expected) == 26
    assert searched(db, term) == expected


def test_a_word_search_lists_each_event_as_the_unsearched_history_does(db, log, monkeypatch):
    """The word search takes each event's outcome from its own scan of the status table
    (not a second lookup): every field of its rows, a pending event's included, is what the
    history without a search shows for the same event."""
    outcomes = ["succeeded", "failed", "pending", "unknown"]
    for number in range(12):
        change(
            log,
            action="iam:TagRole",
            target="arn:aws:iam::123456789012:role/build-agent-7",
            params={"role_name": "build-agent-7"},
            outcome=outcomes[number % 4],
            aws_request_id=f"request-{number}",
            **({"error_code": "Throttling"} if number % 4 == 1 else {}),
        )
    monkeypatch.setattr(audit_query, "NEWEST_SPAN", 5)  # several ranges
    listed = {row.seq: row for row in AuditQueries(db).page(AuditFilters(), limit=100).rows}
    found = AuditQueries(db).page(AuditFilters(q="role/build-agent"), limit=100).rows
    assert len(found) == 12
    assert {row.outcome for row in found} == set(outcomes)
    for row in found:
        assert row == listed[row.seq]


def test_a_word_search_reads_about_a_page_of_matches_past_its_first_range(
    postgres_url, monkeypatch
):
    """After the newest range, the next is sized from the matches found so far: the ranges a
    page asks hold about the page's matches, not a fixed growth's several times more (each
    match in a range is a heap block PostgreSQL reads). Matches here are evenly spread, as a
    busy role's changes are over its history."""
    migrate.upgrade(postgres_url)
    db = Database(postgres_url)
    ranges: list[tuple[int, int]] = []

    def asked(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if isinstance(parameters, dict) and "range_low" in parameters:
            ranges.append((parameters["range_low"], parameters["range_last"]))

    monkeypatch.setattr(audit_query, "NEWEST_SPAN", 8)
    try:
        log = AuditLog(db)
        for number in range(200):
            role = "build-agent-7" if number % 2 else f"other-{number}"
            change(log, action="iam:TagRole", target=f"arn:aws:iam::123456789012:role/{role}")
        event.listen(db.engine, "before_cursor_execute", asked)
        page = AuditQueries(db).page(AuditFilters(q="role/build-agent"), limit=10)
        event.remove(db.engine, "before_cursor_execute", asked)
        expected = brute_force(db, "role/build-agent")
    finally:
        db.dispose()
    assert len(expected) == 100
    assert [row.seq for row in page.rows] == expected[:10]
    assert len(ranges) >= 2  # the first range held less than a page
    read = [seq for seq in expected if any(low <= seq <= last for low, last in ranges)]
    # The page and one more (11 events), with the margin's half again and a range's rounding
    # (growing each range 4 times, as before, read 42).
    assert len(read) <= 18, (ranges, len(read))
