"""Each access review finding: a role that has it and one that does not, made through boto3
in the sandbox, scanned with GetAccountAuthorizationDetails and checked as the page shows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from app.aws.sandbox import set_role_dates
from app.review.findings import KIND_LABELS
from app.review.view import ReviewQuery, ReviewRow, build_row, review_page
from app.services import Services
from tests.conftest import SANDBOX_REGION

ACCOUNT = "123456789012"
NOW = datetime.now(UTC)


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def _trust(principal: dict[str, Any], condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sts:AssumeRoleWithWebIdentity" if "Federated" in principal else "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


EC2 = _trust({"Service": "ec2.amazonaws.com"})


@pytest.fixture
def iam(services: Services) -> Any:
    return boto3.client(
        "iam",
        endpoint_url=services.sandbox_endpoint,
        region_name=SANDBOX_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _role(iam: Any, name: str, trust: str = EC2, **kwargs: Any) -> None:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **kwargs)


def _rows(services: Services, days: int = 90) -> dict[str, ReviewRow]:
    result = services.access_scan.run_now()
    now = datetime.now(UTC)
    rows = {s.name: build_row(s, result, None, now, days) for s in result.roles.values()}
    # The page filters by kind without writing findings out: it must pick the same roles.
    for kind in KIND_LABELS:
        page = review_page(result, {}, ReviewQuery(kind=kind, days=days, per_page=100), now)
        assert {r.name for r in page.rows} == {n for n, r in rows.items() if kind in r.kinds}
    return rows


def _kinds(row: ReviewRow) -> set[str]:
    return set(row.kinds)


def test_unused(services: Services, iam: Any) -> None:
    _role(iam, "old-never-used")
    _role(iam, "old-used-long-ago")
    _role(iam, "old-used-lately")
    _role(iam, "new-never-used")
    set_role_dates(ACCOUNT, "old-never-used", created=NOW - timedelta(days=200))
    set_role_dates(
        ACCOUNT,
        "old-used-long-ago",
        created=NOW - timedelta(days=300),
        last_used=NOW - timedelta(days=120),
    )
    set_role_dates(
        ACCOUNT,
        "old-used-lately",
        created=NOW - timedelta(days=300),
        last_used=NOW - timedelta(days=3),
    )
    rows = _rows(services)
    assert "unused" in _kinds(rows["old-never-used"])
    assert "unused" in _kinds(rows["old-used-long-ago"])
    assert "unused" not in _kinds(rows["old-used-lately"])
    assert "unused" not in _kinds(rows["new-never-used"])
    # The number of days is the reader's: 150 days makes the 120-day-old use recent enough.
    result = services.access_scan.result
    assert result is not None
    long_ago = result.roles["old-used-long-ago"]
    assert "unused" not in build_row(long_ago, result, None, NOW, 150).kinds


def test_admin_equivalent(services: Services, iam: Any) -> None:
    _role(iam, "admin-attached")
    iam.attach_role_policy(
        RoleName="admin-attached", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    _role(iam, "admin-inline")
    iam.put_role_policy(RoleName="admin-inline", PolicyName="all", PolicyDocument=_doc(_allow("*")))
    _role(iam, "reader")
    iam.put_role_policy(
        RoleName="reader", PolicyName="read", PolicyDocument=_doc(_allow("s3:GetObject"))
    )
    # Administrator access limited by a boundary that does not itself allow everything.
    boundary = iam.create_policy(
        PolicyName="OnlyS3Read", PolicyDocument=_doc(_allow(["s3:GetObject", "s3:ListBucket"]))
    )["Policy"]["Arn"]
    _role(iam, "admin-bounded", PermissionsBoundary=boundary)
    iam.put_role_policy(
        RoleName="admin-bounded", PolicyName="all", PolicyDocument=_doc(_allow("*"))
    )
    rows = _rows(services)
    assert "admin" in _kinds(rows["admin-attached"])
    assert "admin" in _kinds(rows["admin-inline"])
    assert "admin" not in _kinds(rows["reader"])
    assert "admin" not in _kinds(rows["admin-bounded"])


def test_privilege_escalation(services: Services, iam: Any) -> None:
    _role(iam, "escalates")
    iam.put_role_policy(
        RoleName="escalates",
        PolicyName="attach",
        PolicyDocument=_doc(_allow("iam:AttachRolePolicy")),
    )
    _role(iam, "passes-only-to-lambda")
    iam.put_role_policy(
        RoleName="passes-only-to-lambda",
        PolicyName="logs",
        PolicyDocument=_doc(_allow(["logs:CreateLogStream", "logs:PutLogEvents"])),
    )
    rows = _rows(services)
    assert "escalation" in _kinds(rows["escalates"])
    assert "escalation" not in _kinds(rows["passes-only-to-lambda"])


def test_escalation_spread_over_two_policies(services: Services, iam: Any) -> None:
    """PassRole in a managed policy and RunInstances inline: one path, found on the union."""
    pass_role = iam.create_policy(
        PolicyName="PassAnyRole", PolicyDocument=_doc(_allow("iam:PassRole"))
    )["Policy"]["Arn"]
    _role(iam, "split-path")
    iam.attach_role_policy(RoleName="split-path", PolicyArn=pass_role)
    iam.put_role_policy(
        RoleName="split-path", PolicyName="run", PolicyDocument=_doc(_allow("ec2:RunInstances"))
    )
    _role(iam, "pass-only")
    iam.attach_role_policy(RoleName="pass-only", PolicyArn=pass_role)
    rows = _rows(services)
    assert "escalation" in _kinds(rows["split-path"])
    assert "escalation" not in _kinds(rows["pass-only"])


def test_trust_findings(services: Services, iam: Any) -> None:
    _role(iam, "anyone", _trust({"AWS": "*"}))
    _role(iam, "partner-no-external-id", _trust({"AWS": "arn:aws:iam::444455556666:root"}))
    _role(
        iam,
        "partner-external-id",
        _trust(
            {"AWS": "arn:aws:iam::444455556666:root"},
            {"StringEquals": {"sts:ExternalId": "b7c1e1d2"}},
        ),
    )
    _role(iam, "own-account", _trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
    github = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    _role(
        iam,
        "github-any-repo",
        _trust(
            {"Federated": github},
            {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}},
        ),
    )
    _role(
        iam,
        "github-one-repo",
        _trust(
            {"Federated": github},
            {
                "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                "StringLike": {"token.actions.githubusercontent.com:sub": "repo:org/app:*"},
            },
        ),
    )
    rows = _rows(services)
    for name in ("anyone", "partner-no-external-id", "github-any-repo"):
        assert "trust" in _kinds(rows[name]), name
    for name in ("partner-external-id", "own-account", "github-one-repo"):
        assert "trust" not in _kinds(rows[name]), name
    assert "444455556666" in rows["partner-no-external-id"].findings[0].message


def test_inline_where_managed_would_do(services: Services, iam: Any) -> None:
    shared = _doc(_allow("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:orders"))
    for name in ("sender-a", "sender-b"):
        _role(iam, name)
        iam.put_role_policy(RoleName=name, PolicyName="send", PolicyDocument=shared)
    as_managed = _doc(_allow("sns:Publish", "arn:aws:sns:us-east-1:123456789012:alerts"))
    iam.create_policy(PolicyName="PublishAlerts", PolicyDocument=as_managed)
    _role(iam, "publisher")
    iam.put_role_policy(RoleName="publisher", PolicyName="publish", PolicyDocument=as_managed)
    _role(iam, "unique")
    iam.put_role_policy(
        RoleName="unique",
        PolicyName="own",
        PolicyDocument=_doc(_allow("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:1:x")),
    )
    rows = _rows(services)
    assert "inline" in _kinds(rows["sender-a"])
    assert "inline" in _kinds(rows["sender-b"])
    assert "PublishAlerts" in next(
        f.message for f in rows["publisher"].findings if f.kind == "inline"
    )
    assert "inline" not in _kinds(rows["unique"])


def test_no_boundary_only_where_the_account_uses_boundaries(services: Services, iam: Any) -> None:
    _role(iam, "plain")
    rows = _rows(services)
    assert "boundary" not in _kinds(rows["plain"])  # no role has a boundary: not reported
    boundary = iam.create_policy(PolicyName="DevBoundary", PolicyDocument=_doc(_allow("s3:*")))[
        "Policy"
    ]["Arn"]
    _role(iam, "bounded", PermissionsBoundary=boundary)
    rows = _rows(services)
    assert "boundary" in _kinds(rows["plain"])
    assert "boundary" not in _kinds(rows["bounded"])


def test_review_overdue_and_due_states(services: Services, iam: Any) -> None:
    from app.audit.audited import AuditContext

    _role(iam, "reviewed-long-ago")
    _role(iam, "reviewed-today")
    _role(iam, "never-reviewed")
    role = services.iam.get_role("reviewed-long-ago")
    services.reviews.record(
        AuditContext(actor="auditor"), role, "keep", "", 90, now=NOW - timedelta(days=100)
    )
    services.reviews.record(
        AuditContext(actor="auditor"), services.iam.get_role("reviewed-today"), "keep", "", 90
    )
    result = services.access_scan.run_now()
    page = review_page(result, services.reviews.latest(), ReviewQuery(per_page=100), NOW)
    by_name = {r.name: r for r in page.rows}
    assert "overdue" in by_name["reviewed-long-ago"].kinds
    assert by_name["reviewed-long-ago"].state == "overdue"
    assert by_name["reviewed-long-ago"].due == (NOW - timedelta(days=10))
    assert "overdue" not in by_name["reviewed-today"].kinds
    assert by_name["reviewed-today"].state == "current"
    assert by_name["never-reviewed"].state == "never"
    overdue = review_page(
        result, services.reviews.latest(), ReviewQuery(review="overdue", per_page=100), NOW
    )
    assert [r.name for r in overdue.rows] == ["reviewed-long-ago"]


def test_clean_role_has_no_findings(services: Services, iam: Any) -> None:
    _role(iam, "clean")
    iam.put_role_policy(
        RoleName="clean",
        PolicyName="read-one-bucket",
        PolicyDocument=_doc(_allow("s3:GetObject", "arn:aws:s3:::example/*")),
    )
    assert _rows(services)["clean"].findings == []


def test_page_follows_the_clock_at_the_exact_moment_and_sorts_both_ways(
    services: Services, iam: Any
) -> None:
    """The page reuses its classification of every role only while no role's state can
    change: a role turns unused the moment its last use is N days old, not some seconds later;
    descending is the exact reverse of ascending."""
    _role(iam, "turning-unused")
    _role(iam, "b-recent")
    used = NOW - timedelta(days=30)
    set_role_dates(ACCOUNT, "turning-unused", created=NOW - timedelta(days=300), last_used=used)
    set_role_dates(ACCOUNT, "b-recent", created=NOW - timedelta(days=300), last_used=NOW)
    result = services.access_scan.run_now()
    edge = used + timedelta(days=30)

    def unused_at(moment: datetime) -> list[str]:
        page = review_page(result, {}, ReviewQuery(kind="unused", days=30), moment)
        return [r.name for r in page.rows]

    assert unused_at(edge - timedelta(seconds=1)) == []
    assert unused_at(edge) == []
    assert unused_at(edge + timedelta(milliseconds=1)) == ["turning-unused"]
    # Back before the edge: the newer classification is not reused for an earlier moment.
    assert unused_at(edge - timedelta(seconds=1)) == []
    for sort in ("name", "created", "last_used", "findings", "due"):
        up = review_page(result, {}, ReviewQuery(sort=sort, per_page=100), NOW)
        down = review_page(result, {}, ReviewQuery(sort=sort, order="desc", per_page=100), NOW)
        assert [r.name for r in down.rows] == [r.name for r in up.rows][::-1]
    by_use = review_page(result, {}, ReviewQuery(sort="last_used", per_page=100), NOW)
    names = [r.name for r in by_use.rows]
    assert names.index("turning-unused") < names.index("b-recent")
