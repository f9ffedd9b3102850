"""A role's Activity: RoleDesk's own events for it, and on real AWS its CloudTrail events.

RoleDesk's events match the role's ARN (what the audited path records) or its bare name
(older entries). CloudTrail's LookupEvents is limited to 2 requests per second per account,
so its answer is kept for a minute per role. IAM is a global service whose events CloudTrail
records in us-east-1, so that is the region asked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from app.audit.query import AuditQueries, EventRow
from app.aws.cloudtrail import CloudTrailGateway
from app.aws.errors import AwsError
from app.aws.types import Role, TrailEvent

TRAIL_REGION = "us-east-1"
TRAIL_CACHE_SECONDS = 60
ROLEDESK_EVENTS = 20


@dataclass(frozen=True)
class RoleActivity:
    events: list[EventRow]
    trail: list[TrailEvent] = field(default_factory=list)
    trail_available: bool = True
    trail_error: AwsError | None = None


_trail_cache: dict[tuple[int, str], tuple[float, list[TrailEvent]]] = {}
_trail_lock = threading.Lock()


def _trail_events(gateway: CloudTrailGateway, key: tuple[int, str]) -> list[TrailEvent]:
    now = time.monotonic()
    with _trail_lock:
        cached = _trail_cache.get(key)
    if cached and now - cached[0] < TRAIL_CACHE_SECONDS:
        return cached[1]
    events = gateway.role_events(key[1])
    with _trail_lock:
        _trail_cache[key] = (now, events)
    return events


def role_activity(services: Any, role: Role) -> RoleActivity:
    """The role's newest RoleDesk events, and its CloudTrail events where there are any."""
    queries = AuditQueries(services.db, services.identity.account)
    events = queries.for_target([role.arn, role.name], limit=ROLEDESK_EVENTS)
    if services.settings.is_sandbox:
        return RoleActivity(events, trail_available=False)
    gateway = CloudTrailGateway(services.clients, TRAIL_REGION)
    try:
        trail = _trail_events(gateway, (id(services.clients), role.name))
    except AwsError as exc:
        return RoleActivity(events, trail_error=exc)
    return RoleActivity(events, trail)
