"""Review records survive a restart (a new Services on the same database), and a role's next
review falls due after the interval its path or tags call for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.audit.audited import AuditContext, Change
from app.aws.types import Role, Tag
from app.review.records import interval_for, rule_problems
from app.services import Services, build_services
from app.settings import Settings
from app.wizard.trust import service_trust


def _role(path: str = "/", tags: tuple[Tag, ...] = ()) -> Role:
    return Role(
        "r",
        "AROAEXAMPLE",
        "arn:aws:iam::123456789012:role/r",
        path,
        datetime.now(UTC),
        {},
        tags=tags,
    )


def test_intervals_by_path_and_tag() -> None:
    rules = {"path:/prod/": 30, "tag:env=prod": 45, "tag:vendor": 60}
    assert interval_for(_role(), 90, rules) == 90
    assert interval_for(_role("/prod/web/"), 90, rules) == 30
    assert interval_for(_role("/production/"), 90, rules) == 90  # a prefix of the path, not text
    assert interval_for(_role(tags=(Tag("env", "prod"),)), 90, rules) == 45
    assert interval_for(_role(tags=(Tag("env", "dev"),)), 90, rules) == 90
    assert interval_for(_role(tags=(Tag("vendor", "x"),)), 90, rules) == 60
    both = _role("/prod/", (Tag("vendor", "x"),))
    assert interval_for(both, 90, rules) == 30  # the shortest matching rule
    assert rule_problems(rules) == []
    assert rule_problems({"owner": 10, "path:/x/": 0}) != []
    with pytest.raises(ValueError, match="path:/prefix/"):
        Settings(review_intervals={"owner": 10})


def test_reviews_survive_a_restart(services: Services, settings: Settings) -> None:
    account = services.identity.account
    services.audited.call(
        AuditContext(actor="setup"),
        Change(f"arn:aws:iam::{account}:role/kept"),
        services.iam.create_role,
        name="kept",
        trust_policy=service_trust("ec2.amazonaws.com"),
    )
    role = services.iam.get_role("kept")
    services.reviews.record(AuditContext(actor="auditor"), role, "remove", "gone soon", 30)
    restarted = build_services(settings, sandbox_endpoint=services.sandbox_endpoint)
    try:
        [review] = restarted.reviews.history("kept")
        assert (review.decision, review.note, review.reviewer) == ("remove", "gone soon", "auditor")
        assert review.due_at - review.reviewed_at == timedelta(days=30)
        assert restarted.reviews.latest()["kept"] == review
    finally:
        restarted.db.dispose()
