"""The access review's objects as JSON text, for the shared state (app.shared.state): a
scanned role, the scan's progress, an Access Advisor report. Every process of one
installation reads the scan and the reports from the database (issue 16), so they are kept as
plain data (JSON, never pickle: a database row must not be able to run code)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.aws.errors import AwsError
from app.aws.types import (
    Role,
    RoleLastUsed,
    ServiceAccess,
    ServiceAccessReport,
)
from app.review.findings import ReviewFinding
from app.roles.inventory import role_fields, role_from_fields


def when(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def role_data(role: Role) -> dict[str, Any]:
    used = role.last_used
    return {
        **role_fields(role),
        "last_used": [when(used.last_used), used.region] if used is not None else None,
    }


def role_of(raw: dict[str, Any]) -> Role:
    used = raw["last_used"]
    return role_from_fields(
        raw, RoleLastUsed(moment(used[0]), used[1]) if used is not None else None
    )


def error_data(error: AwsError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "code": error.code,
        "message": error.message,
        "request_id": error.request_id,
        "http_status": error.http_status,
        "operation": error.operation,
    }


def error_of(raw: dict[str, Any] | None) -> AwsError | None:
    if raw is None:
        return None
    return AwsError(
        raw["code"],
        raw["message"],
        request_id=raw["request_id"],
        http_status=raw["http_status"],
        operation=raw["operation"],
    )


def report_data(report: ServiceAccessReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "status": report.status,
        "job_created": when(report.job_created),
        "job_completed": when(report.job_completed),
        "services": [
            [s.namespace, s.name, when(s.last_authenticated), s.last_region, s.last_entity]
            for s in report.services
        ],
        "error": report.error,
    }


def report_of(raw: dict[str, Any] | None) -> ServiceAccessReport | None:
    if raw is None:
        return None
    return ServiceAccessReport(
        raw["status"],
        moment(raw["job_created"]),
        moment(raw["job_completed"]),
        tuple(
            ServiceAccess(namespace, name, moment(used_at), region, entity)
            for namespace, name, used_at, region, entity in raw["services"]
        ),
        raw["error"],
    )


def finding_data(finding: ReviewFinding) -> list[str]:
    return [finding.kind, finding.message, finding.subject]


def finding_of(raw: list[str]) -> ReviewFinding:
    return ReviewFinding(raw[0], raw[1], raw[2])
