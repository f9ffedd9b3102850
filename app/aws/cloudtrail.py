"""CloudTrail: AWS's own record of calls on a role, for the role's Activity section.

LookupEvents covers the last 90 days of management events in one region, takes exactly one
lookup attribute, returns at most 50 events per call and is limited to 2 requests per second
per account and region. The embedded sandbox (moto) does not implement it.
API reference: https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from app.aws.calls import reads
from app.aws.clients import AwsClients
from app.aws.translate import aws_errors
from app.aws.types import TrailEvent

LOOKBACK = timedelta(days=90)


def _trail_event(raw: dict[str, Any]) -> TrailEvent:
    detail: dict[str, Any] = {}
    try:
        detail = json.loads(raw.get("CloudTrailEvent") or "{}")
    except ValueError:
        detail = {}
    identity = detail.get("userIdentity") or {}
    return TrailEvent(
        event_id=raw.get("EventId", ""),
        name=raw.get("EventName", ""),
        time=raw.get("EventTime"),
        source=raw.get("EventSource", ""),
        username=raw.get("Username") or identity.get("arn") or "",
        read_only=str(raw.get("ReadOnly", "")).lower() == "true",
        source_ip=detail.get("sourceIPAddress"),
        error_code=detail.get("errorCode"),
        request_id=detail.get("requestID"),
    )


class CloudTrailGateway:
    def __init__(self, clients: AwsClients, region: str | None = None) -> None:
        self._clients = clients
        self.region = region or clients.region

    @reads("cloudtrail:LookupEvents")
    def role_events(self, role_name: str, max_results: int = 50) -> list[TrailEvent]:
        """The newest events naming the role as a resource, over the last 90 days."""
        now = datetime.now(UTC)
        with aws_errors():
            raw = self._clients.client("cloudtrail", self.region).lookup_events(
                LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": role_name}],
                StartTime=now - LOOKBACK,
                EndTime=now,
                MaxResults=max(1, min(max_results, 50)),
            )
        return [_trail_event(e) for e in raw.get("Events", [])]
