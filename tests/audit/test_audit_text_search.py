"""Audit text search on SQLite and PostgreSQL: what it finds (every searchable field, case,
LIKE metacharacters taken literally, never across two fields), that the write paths,
`roledesk audit reindex` and migration 0006 build the same search text, and that PostgreSQL
searches the whole history through its trigram index while SQLite keeps its window."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from app import migrate
from app.audit import query as audit_query
from app.audit.log import AuditLog, NewEntry, rebuild_status_index
from app.audit.query import AuditFilters, AuditQueries
from app.audit.search import SEPARATOR
from app.db import Database
from app.models import AuditEventStatus
from tests.audit.helpers import change


def found(db: Database, term: str, **filters) -> list[int]:
    return [r.seq for r in AuditQueries(db).page(AuditFilters(q=term, **filters)).rows]


@pytest.fixture
def events(log):
    return {
        "create": change(
            log,
            actor="Alice",
            action="iam:CreateRole",
            target="arn:aws:iam::123456789012:role/Web_App",
            params={"role_name": "Web_App", "note": "100% sure"},
            outcome="succeeded",
            aws_request_id="REQ-create-42",
        ),
        "attach": change(
            log,
            actor="bob",
            action="iam:AttachRolePolicy",
            target="arn:aws:iam::123456789012:role/Web_App",
            outcome="failed",
            error_code="NoSuchEntity",
            error_message="Policy arn:aws:iam::aws:policy/Nope does not exist",
            aws_request_id="req-attach-7",
        ),
        "pending": change(
            log,
            actor="carol",
            action="iam:DeleteRole",
            target="arn:aws:iam::1:role/back\\slash",
            outcome="pending",
            op="op-carol",
        ),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("alice", ["create"]),  # actor, any case
        ("WEB_APP", ["attach", "create"]),  # target, any case
        ("does not exist", ["attach"]),  # the outcome's error message
        ("nosuchentity", ["attach"]),  # the outcome's error code
        ("req-create", ["create"]),  # the outcome's request id
        ("100% sure", ["create"]),  # request parameters; % taken literally
        ("100%", ["create"]),
        ("web_", ["attach", "create"]),  # _ taken literally
        ("webXapp", []),
        ("back\\slash", ["pending"]),  # backslash taken literally
        ("op-carol", ["pending"]),  # operation id
        ("deleterole", ["pending"]),  # action
        ("alice" + SEPARATOR + "iam", []),  # never across two fields
        ("Alice iam:CreateRole", []),
    ],
)
def test_text_search_finds_each_field(db, events, term, expected):
    assert found(db, term) == [events[name] for name in expected]


def test_text_search_combines_with_filters(db, events):
    assert found(db, "web_app", outcome="failed") == [events["attach"]]
    assert found(db, "web_app", actor="Alice") == [events["create"]]
    assert found(db, "does not exist", actor="Alice") == []


def _search_column(db: Database) -> dict[int, str | None]:
    with db.sessions() as session:
        return dict(session.execute(select(AuditEventStatus.seq, AuditEventStatus.search)).all())


def test_reindex_and_migration_build_the_text_the_write_path_wrote(db, events):
    written = _search_column(db)
    assert len(written) >= 3 and all(written.values())
    rebuild_status_index(db)
    assert _search_column(db) == written
    url = db.engine.url.render_as_string(hide_password=False)
    db.dispose()
    migrate.downgrade(url, "0005_audit_filters")
    migrate.upgrade(url)
    assert _search_column(Database(url)) == written


def test_postgresql_searches_the_whole_history_through_its_index(postgres_url, monkeypatch):
    migrate.upgrade(postgres_url)
    db = Database(postgres_url)
    try:
        log = AuditLog(db)
        old = change(log, actor="dave", action="iam:CreateRole", target="needle-role")
        for i in range(40):
            log.append(
                NewEntry(
                    kind="record", action="roledesk:SignIn", actor=f"u{i}", outcome="succeeded"
                )
            )
        monkeypatch.setattr(audit_query, "SEARCH_WINDOW", 10)
        page = AuditQueries(db).page(AuditFilters(q="needle-role"))
        # 40 newer entries lie between: a window of 10 would have stopped short of it.
        assert [r.seq for r in page.rows] == [old] and page.searched_down_to is None
        # Two characters are below the trigram index's grams: the bounded window again.
        assert AuditQueries(db).page(AuditFilters(q="u3")).searched_down_to is not None
        with db.engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))  # a tiny table: force the choice
            plan = "\n".join(
                conn.execute(
                    text("EXPLAIN SELECT seq FROM audit_event_status WHERE search LIKE :p"),
                    {"p": "%needle-role%"},
                ).scalars()
            )
        # The settled partition's copy of the index (migration 0012_status_settled_apart).
        assert "ix_audit_event_status_settled_search_trgm" in plan
    finally:
        db.dispose()


def test_sqlite_keeps_its_bounded_window(sqlite_url, monkeypatch):
    migrate.upgrade(sqlite_url)
    db = Database(sqlite_url)
    log = AuditLog(db)
    old = change(log, actor="dave", action="iam:CreateRole", target="needle-role")
    for i in range(40):
        log.append(
            NewEntry(kind="record", action="roledesk:SignIn", actor=f"u{i}", outcome="succeeded")
        )
    monkeypatch.setattr(audit_query, "SEARCH_WINDOW", 10)
    page = AuditQueries(db).page(AuditFilters(q="needle-role"))
    assert page.rows == [] and page.searched_down_to is not None
    assert (
        found(db, "needle-role", **{}) == []
        and AuditQueries(db)
        .page(AuditFilters(q="needle-role"), before=page.searched_down_to - 30)
        .rows[0]
        .seq
        == old
    )
    db.dispose()


HOSTILE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=40,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(message=HOSTILE, start=st.integers(0, 39), length=st.integers(1, 20))
def test_any_substring_of_a_message_finds_its_event(db, log, message, start, length):
    """Hostile text (LIKE metacharacters, quotes, Unicode) in an error message: searching for
    a piece of it finds that event, and no term fails the page."""
    seq = change(
        log,
        actor="fuzz",
        action="iam:PutRolePolicy",
        target="t",
        outcome="failed",
        error_code="X",
        error_message=message,
    )
    term = message[start % len(message) :][:length].strip()
    result = found(db, term)  # never raises, whatever the term
    if not term or SEPARATOR in term:
        return
    # The promise: found when the term's lower-case form is part of the field's. SQLite's
    # windowed LIKE folds ASCII letters only, so there the promise is for ASCII terms.
    if term.lower() in message.lower() and (not db.is_sqlite or term.isascii()):
        assert seq in result, (message, term)


@pytest.mark.parametrize("walk", [5_000, 40, 7])
def test_pages_of_a_search_are_the_same_whichever_plan_finds_them(db, log, monkeypatch, walk):
    """PostgreSQL first walks a bounded number of events, then leaves it to the planner:
    paging through every match gives each once, newest first, however the walk ends."""
    monkeypatch.setattr(audit_query, "TEXT_WALK_ROWS", walk)
    expected = []
    for i in range(130):
        entry = log.append(
            NewEntry(
                kind="record",
                action="roledesk:Test",
                actor="u" if i % 3 else "other",
                outcome="succeeded",
                target=f"needle-{i}" if i % 3 else f"hay-{i}",
            )
        )
        if i % 3:
            expected.append(entry.seq)
    queries, seen, before = AuditQueries(db), [], None
    for _ in range(10):
        page = queries.page(AuditFilters(q="needle", actor="u"), before=before)
        seen += [r.seq for r in page.rows]
        if page.older is None:
            break
        before = page.older
    assert seen == sorted(expected, reverse=True)
