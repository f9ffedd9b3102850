"""Drafts of the create-role wizard, kept in the database.

Each step saves its raw form values into the draft; nothing is trusted from the draft at
create time (everything is validated again). Claiming a draft for creation is one atomic
`UPDATE ... SET status='creating' WHERE id=? AND status IN ('draft','failed')`: whichever
request (tab, click, worker process) changes the row wins; the others see zero rows changed.
Drafts expire 7 days after their last change; expired drafts are not resumable and are
deleted when the Create role page is opened (at most once every few minutes per process).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.orm import Session

from app.db import Database
from app.wizard.models import RoleDraft

LIFETIME = timedelta(days=7)
RESUMABLE = ("draft", "failed")
# Deleting expired drafts is housekeeping (they are neither shown nor resumable once
# expired): a write transaction on every opening of the Create role page cost more than the
# page's own work, so it runs at most this often per process.
PURGE_EVERY = timedelta(minutes=5)
_BY_ID = select(RoleDraft.__table__).where(RoleDraft.id == bindparam("id"))
_RESUMABLE_OF = (
    select(RoleDraft.__table__)
    .where(
        RoleDraft.actor == bindparam("actor"),
        RoleDraft.status.in_(RESUMABLE),
        RoleDraft.expires_at > bindparam("now"),
    )
    .order_by(RoleDraft.updated_at.desc())
)
# A step saved: built once, as every step request runs it (building the statement cost more
# than running it on SQLite).
_TABLE = RoleDraft.__table__
_SAVE_STEP = (
    update(RoleDraft)
    .where(RoleDraft.id == bindparam("draft_id"))
    .values(
        data=bindparam("new_data", type_=_TABLE.c.data.type),
        updated_at=bindparam("now", type_=_TABLE.c.updated_at.type),
        expires_at=bindparam("expires", type_=_TABLE.c.expires_at.type),
    )
)


@dataclass(frozen=True)
class Draft:
    id: str
    actor: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    data: dict[str, Any]
    status: str
    operation_id: str | None
    role_arn: str | None
    failure: dict[str, Any] | None

    def step(self, name: str) -> dict[str, Any]:
        value = self.data.get(name)
        return dict(value) if isinstance(value, dict) else {}

    @property
    def editable(self) -> bool:
        """Steps may still change (not being created, not created)."""
        return self.status in RESUMABLE

    @property
    def role_name(self) -> str:
        return str(self.step("details").get("name", "")) or "(no name yet)"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _draft(row: Any) -> Draft:
    """A Draft from a RoleDraft object or a row of its columns."""
    return Draft(
        id=row.id,
        actor=row.actor,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        expires_at=_utc(row.expires_at),
        data=dict(row.data or {}),
        status=row.status,
        operation_id=row.operation_id,
        role_arn=row.role_arn,
        failure=row.failure,
    )


class DraftStore:
    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self._db = db
        self._now = clock or (lambda: datetime.now(UTC))
        self._purged_at: datetime | None = None

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE,
        waiting up to the busy timeout): a deferred transaction that read first cannot upgrade
        to a write after another connection wrote, and fails with "database is locked"."""
        options = {"sqlite_immediate": True} if self._db.is_sqlite else {}
        with self._db.sessions() as session:
            session.connection(execution_options=options)
            yield session
            session.commit()

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        """A Core connection whose transactions take the write lock up front on SQLite
        (BEGIN IMMEDIATE; see _writing); no ORM unit of work."""
        with self._db.engine.connect() as conn:
            yield conn.execution_options(sqlite_immediate=True) if self._db.is_sqlite else conn

    def create(self, actor: str, data: dict[str, Any] | None = None) -> Draft:
        """A new draft; the wizard makes one only when step 1 is saved (`data` holds it)."""
        now = self._now()
        row = RoleDraft(
            id=str(uuid.uuid4()),
            actor=actor,
            created_at=now,
            updated_at=now,
            expires_at=now + LIFETIME,
            data=dict(data or {}),
            status="draft",
        )
        with self._writing() as session:
            session.add(row)
        return _draft(row)

    def get(self, draft_id: str) -> Draft | None:
        """The draft, or None when unknown or expired (created ones never expire from view).

        Every wizard request reads its draft: one Core query, no ORM unit of work."""
        with self._db.engine.connect() as conn:
            row = conn.execute(_BY_ID, {"id": draft_id}).first()
        if row is None:
            return None
        draft = _draft(row)
        if draft.editable and draft.expires_at <= self._now():
            return None
        return draft

    def resumable(self, actor: str) -> list[Draft]:
        """`actor`'s drafts that can be resumed, latest change first (one Core query: the
        ORM's unit of work cost more than the query)."""
        with self._db.engine.connect() as conn:
            rows = conn.execute(_RESUMABLE_OF, {"actor": actor, "now": self._now()}).all()
        return [_draft(r) for r in rows]

    def save_step(self, draft_id: str, step: str, values: dict[str, Any]) -> Draft | None:
        """Store one step's values and return the draft as saved; None when the draft is no
        longer editable. Read and write happen under the write lock (BEGIN IMMEDIATE on
        SQLite, FOR UPDATE on PostgreSQL), so two tabs saving different steps lose neither."""
        now = self._now()
        with self._write_connection() as conn, conn.begin():
            query = _BY_ID if self._db.is_sqlite else _BY_ID.with_for_update()
            row = conn.execute(query, {"id": draft_id}).first()
            if row is None or row.status not in RESUMABLE:
                return None
            data = {**(row.data or {}), step: values}
            conn.execute(
                _SAVE_STEP,
                {"draft_id": draft_id, "new_data": data, "now": now, "expires": now + LIFETIME},
            )
        return replace(_draft(row), data=data, updated_at=now, expires_at=now + LIFETIME)

    def edit_step(
        self,
        draft_id: str,
        actor: str,
        step: str,
        values_for: Callable[[Draft], dict[str, Any]],
    ) -> Draft | None:
        """Read `actor`'s draft and store one step's values computed from it, in one write
        transaction (save_step after a separate read cost a read more on every step request,
        and a step computed from an older read could drop another tab's change to it).

        Returns the draft as saved; the draft unchanged when it is no longer editable (being
        or already created); None when it is unknown, expired or someone else's."""
        now = self._now()
        with self._write_connection() as conn, conn.begin():
            query = _BY_ID if self._db.is_sqlite else _BY_ID.with_for_update()
            row = conn.execute(query, {"id": draft_id}).first()
            if row is None:
                return None
            draft = _draft(row)
            if draft.actor != actor or (draft.editable and draft.expires_at <= now):
                return None
            if not draft.editable:
                return draft
            data = {**draft.data, step: values_for(draft)}
            conn.execute(
                _SAVE_STEP,
                {"draft_id": draft_id, "new_data": data, "now": now, "expires": now + LIFETIME},
            )
        return replace(draft, data=data, updated_at=now, expires_at=now + LIFETIME)

    def discard(self, draft_id: str, actor: str) -> bool:
        """Delete one of `actor`'s unfinished drafts; False when there is none to delete (gone,
        someone else's, or being created or created, which stay for their done page)."""
        with self._writing() as session:
            result = session.execute(
                delete(RoleDraft)
                .where(
                    RoleDraft.id == draft_id,
                    RoleDraft.actor == actor,
                    RoleDraft.status.in_(RESUMABLE),
                )
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0)) == 1

    def creating(self) -> list[Draft]:
        """Drafts whose create run has started and not finished."""
        with self._db.sessions() as session:
            rows = session.scalars(select(RoleDraft).where(RoleDraft.status == "creating"))
            return [_draft(row) for row in rows]

    def claim(self, draft_id: str, operation_id: str, data: dict[str, Any] | None = None) -> bool:
        """Atomically move a draft to `creating`; True for exactly one caller. `data`, when
        given, is stored in the same UPDATE: the steps as validated for this create (the
        create request saves its last step's values this way, one write instead of two)."""
        now = self._now()
        values: dict[str, Any] = {
            "status": "creating",
            "operation_id": operation_id,
            "failure": None,
            "updated_at": now,
        }
        if data is not None:
            values["data"] = data
        with self._write_connection() as conn, conn.begin():
            result = conn.execute(
                update(RoleDraft)
                .where(
                    RoleDraft.id == draft_id,
                    RoleDraft.status.in_(RESUMABLE),
                    RoleDraft.expires_at > now,
                )
                .values(**values)
            )
            return int(result.rowcount or 0) == 1

    def finish(
        self,
        draft_id: str,
        *,
        role_arn: str | None = None,
        failure: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Record the run's result; `summary` (CLI commands etc.) is kept in the data. Only a
        draft being created changes (compare-and-set on its status). `data`: the draft's data
        as claimed, when the caller has it (a draft being created is never edited, so it is
        what is stored): one UPDATE, without reading the row under the write lock first."""
        status = "failed" if failure else "created"
        with self._write_connection() as conn, conn.begin():
            if data is None:
                query = _BY_ID if self._db.is_sqlite else _BY_ID.with_for_update()
                row = conn.execute(query, {"id": draft_id}).first()
                if row is None or row.status != "creating":
                    return
                data = row.data or {}
            conn.execute(
                update(RoleDraft)
                .where(RoleDraft.id == draft_id, RoleDraft.status == "creating")
                .values(
                    status=status,
                    role_arn=role_arn,
                    failure=failure,
                    data={**data, "summary": summary or {}},
                    updated_at=self._now(),
                )
            )

    def purge_expired_if_due(self) -> int:
        """purge_expired, at most once per PURGE_EVERY (0 when not due)."""
        now = self._now()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return 0
        self._purged_at = now
        return self.purge_expired()

    def purge_expired(self) -> int:
        """Delete resumable drafts past their expiry; returns how many."""
        with self._writing() as session:
            result = session.execute(
                delete(RoleDraft)
                .where(RoleDraft.status.in_(RESUMABLE), RoleDraft.expires_at <= self._now())
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0))
