"""Which services a role used, and when (IAM Access Advisor), per role.

AWS builds the report as a job: GenerateServiceLastAccessedDetails starts it and answers a job
id at once; GetServiceLastAccessedDetails answers IN_PROGRESS until it is COMPLETED (seconds,
for one role) or FAILED. A request never waits for it: starting a report is one call, and each
later look at the role (the page's htmx poll, or a plain reload) asks AWS for the job's state
once, at most once a second. A finished report is kept per role, with its age, until someone
asks for a new one; with several processes it is kept in the database, so every process shows
it and a restart keeps it.

The sandbox (moto) does not implement these calls. Its answer, code `NotImplemented`
(app.aws.sandbox), is recorded as "not available here", and nothing is shown in its place.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from app.aws.errors import AwsError
from app.aws.iam import IamGateway
from app.aws.types import ServiceAccess, ServiceAccessReport
from app.review import stored
from app.shared.state import SharedState

NOT_IMPLEMENTED = "NotImplemented"
# How often a look at a running report asks AWS for its state.
POLL_SECONDS = 1.0
# The shared state's name for the reports (keyed by account id, one item per lower-cased role
# name), and the item that records the endpoint's NotImplemented (no role name has a "~").
INVENTORY = "last_accessed"
UNSUPPORTED = "~unsupported"


@dataclass(frozen=True)
class LastAccessed:
    """One role's report as RoleDesk holds it.

    state: "none" (never asked), "running", "done", "failed" (AWS's job failed),
    "unsupported" (the endpoint does not implement the calls), "error" (an AWS error).
    """

    state: str = "none"
    job_id: str = ""
    started_at: datetime | None = None
    checked_at: float = 0.0  # when AWS was last asked (the reports' clock: wall-clock time)
    report: ServiceAccessReport | None = None
    error: AwsError | None = None
    failure: str = ""  # AWS's reason when its job FAILED

    @property
    def finished_at(self) -> datetime | None:
        return self.report.job_completed if self.report else None

    def age(self, now: datetime) -> timedelta | None:
        done = self.finished_at
        return now - done if done else None

    def used(self) -> list[ServiceAccess]:
        """Services used in IAM's tracking period, most recent first."""
        found = [s for s in self.services() if s.last_authenticated is not None]
        return sorted(found, key=lambda s: (s.last_authenticated, s.namespace), reverse=True)

    def unused(self, now: datetime, days: int) -> list[ServiceAccess]:
        """Services the role's policies grant that it has not used in `days` days (or ever,
        in IAM's tracking period): candidates to remove from its permissions."""
        cutoff = now - timedelta(days=days)
        return sorted(
            (
                s
                for s in self.services()
                if s.last_authenticated is None or s.last_authenticated < cutoff
            ),
            key=lambda s: s.namespace,
        )

    def services(self) -> tuple[ServiceAccess, ...]:
        """The last completed report's services (kept on show while a new one runs)."""
        if self.report is None or self.report.status != "COMPLETED":
            return ()
        return self.report.services


def entry_to_json(entry: LastAccessed) -> str:
    return stored.dumps(
        {
            "state": entry.state,
            "job_id": entry.job_id,
            "started_at": stored.when(entry.started_at),
            "checked_at": entry.checked_at,
            "report": stored.report_data(entry.report),
            "error": stored.error_data(entry.error),
            "failure": entry.failure,
        }
    )


def entry_from_json(data: str) -> LastAccessed:
    raw = json.loads(data)
    return LastAccessed(
        raw["state"],
        raw["job_id"],
        stored.moment(raw["started_at"]),
        raw["checked_at"],
        stored.report_of(raw["report"]),
        stored.error_of(raw["error"]),
        raw["failure"],
    )


class LastAccessedReports:
    """Each role's Access Advisor report in one account, by lower-cased role name.

    With a shared state (several processes, issue 16) the reports live in the database, not
    in this process: a report asked for through one process is followed, and shown, by every
    process, and survives a restart. Each look reads the role's row (one primary-key read);
    `checked_at` is wall-clock time, so "at most once per POLL_SECONDS" holds across them."""

    def __init__(
        self,
        iam: IamGateway,
        clock: Callable[[], float] = time.time,
        *,
        shared: SharedState | None = None,
        account_id: str = "",
    ) -> None:
        self._iam = iam
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, LastAccessed] = {}
        self._shared = shared
        self._key = account_id
        # The endpoint's NotImplemented answer, once given: it holds for every role, so the
        # other roles' pages say so without asking again.
        self.unsupported: AwsError | None = None

    def _get(self, key: str) -> LastAccessed | None:
        if self._shared is None:  # callers that must not interleave hold self._lock
            return self._held.get(key)
        data = self._shared.load_item(INVENTORY, self._key, key)
        return entry_from_json(data) if data is not None else None

    def _keep(self, key: str, entry: LastAccessed) -> None:
        if self._shared is None:
            self._held[key] = entry
            return
        self._shared.keep_item(INVENTORY, self._key, key, entry_to_json(entry))

    def _unsupported(self) -> AwsError | None:
        if self.unsupported is None and self._shared is not None:
            found = self._get(UNSUPPORTED)
            if found is not None:
                self.unsupported = found.error
        return self.unsupported

    def held(self, name: str) -> LastAccessed:
        """What is held for the role, without asking AWS."""
        found = self._get(name.lower())
        if found is None:
            unsupported = self._unsupported()
            if unsupported is not None:
                return LastAccessed("unsupported", error=unsupported)
        return found or LastAccessed()

    def start(self, name: str, arn: str) -> LastAccessed:
        """Ask AWS for a new report (one call); the previous one stays until it is done."""
        now = datetime.now(UTC)
        try:
            job_id = self._iam.start_service_last_accessed(arn)
        except AwsError as exc:
            entry = LastAccessed(_failure_state(exc), started_at=now, error=exc)
            if entry.state == "unsupported":
                self.unsupported = exc
                if self._shared is not None:  # every process's other roles say so too
                    self._keep(UNSUPPORTED, entry)
        else:
            entry = LastAccessed("running", job_id, now, self._clock())
        with self._lock:
            previous = self._get(name.lower())
            if previous and previous.report and previous.report.status == "COMPLETED":
                entry = replace(entry, report=previous.report)
            self._keep(name.lower(), entry)
        return entry

    def look(self, name: str) -> LastAccessed:
        """The role's report, asking AWS for a running job's state (one call, at most once
        per POLL_SECONDS)."""
        entry = self.held(name)
        if entry.state != "running" or self._clock() - entry.checked_at < POLL_SECONDS:
            return entry
        try:
            report = self._iam.service_last_accessed(entry.job_id)
        except AwsError as exc:
            updated = replace(entry, state=_failure_state(exc), error=exc, checked_at=self._clock())
        else:
            state = {"COMPLETED": "done", "FAILED": "failed"}.get(report.status, "running")
            updated = replace(
                entry,
                state=state,
                checked_at=self._clock(),
                # A running or failed job leaves the last completed report on show.
                report=report if state == "done" else entry.report,
                error=None,
                failure=(report.error or "AWS gave no reason.") if state == "failed" else "",
            )
        with self._lock:
            # Not replaced by a newer start meanwhile (in any process: the same job).
            now = self._get(name.lower())
            if now is not None and (now.job_id, now.started_at) == (entry.job_id, entry.started_at):
                self._keep(name.lower(), updated)
        return updated


def _failure_state(exc: AwsError) -> str:
    return "unsupported" if exc.code == NOT_IMPLEMENTED else "error"
