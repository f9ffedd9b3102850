"""Which services a role used, and when (IAM Access Advisor), per role, kept in memory.

AWS builds the report as a job: GenerateServiceLastAccessedDetails starts it and answers a job
id at once; GetServiceLastAccessedDetails answers IN_PROGRESS until it is COMPLETED (seconds,
for one role) or FAILED. A request never waits for it: starting a report is one call, and each
later look at the role (the page's htmx poll, or a plain reload) asks AWS for the job's state
once, at most once a second. A finished report is kept per role, with its age, until someone
asks for a new one.

The sandbox (moto) does not implement these calls. Its answer, code `NotImplemented`
(app.aws.sandbox), is recorded as "not available here", and nothing is shown in its place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from app.aws.errors import AwsError
from app.aws.iam import IamGateway
from app.aws.types import ServiceAccess, ServiceAccessReport

NOT_IMPLEMENTED = "NotImplemented"
# How often a look at a running report asks AWS for its state.
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class LastAccessed:
    """One role's report as RoleDesk holds it.

    state: "none" (never asked), "running", "done", "failed" (AWS's job failed),
    "unsupported" (the endpoint does not implement the calls), "error" (an AWS error).
    """

    state: str = "none"
    job_id: str = ""
    started_at: datetime | None = None
    checked_at: float = 0.0  # monotonic time of the last look at AWS
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


class LastAccessedReports:
    """Each role's Access Advisor report in one account, by lower-cased role name."""

    def __init__(self, iam: IamGateway, clock: Callable[[], float] = time.monotonic) -> None:
        self._iam = iam
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, LastAccessed] = {}
        # The endpoint's NotImplemented answer, once given: it holds for every role, so the
        # other roles' pages say so without asking again.
        self.unsupported: AwsError | None = None

    def held(self, name: str) -> LastAccessed:
        """What is held for the role, without asking AWS."""
        with self._lock:
            found = self._held.get(name.lower())
        if found is None and self.unsupported is not None:
            return LastAccessed("unsupported", error=self.unsupported)
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
        else:
            entry = LastAccessed("running", job_id, now, self._clock())
        with self._lock:
            previous = self._held.get(name.lower())
            if previous and previous.report and previous.report.status == "COMPLETED":
                entry = replace(entry, report=previous.report)
            self._held[name.lower()] = entry
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
            if self._held.get(name.lower()) is entry:  # not replaced by a newer start
                self._held[name.lower()] = updated
        return updated


def _failure_state(exc: AwsError) -> str:
    return "unsupported" if exc.code == NOT_IMPLEMENTED else "error"
