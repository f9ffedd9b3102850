"""The access review's shared state under real threads: RoleDesk's own changes made while a
scan runs are not lost, and review records written at once by several threads are all kept
(SQLite and PostgreSQL), with each role's latest review the one written last."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from app import migrate
from app.audit.audited import AuditContext, Change
from app.services import Services
from tests.conftest import SANDBOX_REGION

EC2 = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, sqlite_url: str) -> str:
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    migrate.upgrade(url)
    return url


def test_changes_during_a_scan_are_not_lost(services: Services) -> None:
    iam = boto3.client(
        "iam",
        endpoint_url=services.sandbox_endpoint,
        region_name=SANDBOX_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    names = [f"busy-{i}" for i in range(6)]
    for name in names:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2)
    scan = services.access_scan
    scan.run_now()
    account = services.identity.account

    def attach(name: str) -> None:
        services.audited.call(
            AuditContext(actor="racer"),
            Change(f"arn:aws:iam::{account}:role/{name}"),
            services.iam.attach_role_policy,
            role_name=name,
            policy_arn=ADMIN,
        )

    assert scan.start()
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(attach, names))
    scan.wait(120)
    result = scan.result
    assert result is not None and not scan.progress.running
    for name in names:
        assert "admin" in result.static_kinds[name], name


def test_reviews_written_at_once_are_all_kept(services: Services) -> None:
    iam = services.iam
    account = services.identity.account
    for i in range(3):
        services.audited.call(
            AuditContext(actor="setup"),
            Change(f"arn:aws:iam::{account}:role/reviewed-{i}"),
            iam.create_role,
            name=f"reviewed-{i}",
            trust_policy=json.loads(EC2),
        )
    targets = [iam.get_role(f"reviewed-{i}") for i in range(3)]
    barrier = threading.Barrier(6)

    def record(n: int) -> None:
        barrier.wait()
        role = targets[n % 3]
        services.reviews.record(AuditContext(actor=f"user-{n}"), role, "keep", f"note {n}", 90)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(record, range(6)))
    for i in range(3):
        history = services.reviews.history(f"reviewed-{i}")
        assert len(history) == 2
        assert services.reviews.latest()[f"reviewed-{i}"] == history[0]
    assert sum(len(services.reviews.history(f"reviewed-{i}")) for i in range(3)) == 6
