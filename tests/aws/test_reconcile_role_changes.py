"""Reconciliation knows the role page's changes: a crash between the call and its outcome is
settled by reading the role back (trust policy, settings, boundary, tags)."""

from __future__ import annotations

import pytest

from app.audit.audited import AuditContext, Change
from app.audit.reconcile import Reconciler
from app.aws.types import Tag
from app.wizard.trust import service_trust
from tests.aws.test_audit_reconcile import crash_after_call

TRUST = service_trust("ec2.amazonaws.com")
LAMBDA = service_trust("lambda.amazonaws.com")
POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def settle(services, seq):
    settled = {
        s.seq: s
        for s in Reconciler(services.db, services.audit_log, services.iam, services.ec2).run()
    }
    return settled[seq].verdict.outcome


@pytest.mark.parametrize(
    ("action", "method", "kwargs", "made"),
    [
        ("iam:UpdateAssumeRolePolicy", "update_trust_policy", {"document": LAMBDA}, True),
        ("iam:UpdateAssumeRolePolicy", "update_trust_policy", {"document": LAMBDA}, False),
        ("iam:UpdateRole", "update_role", {"description": "d", "max_session_duration": 7200}, True),
        ("iam:PutRolePermissionsBoundary", "put_role_boundary", {"policy_arn": POLICY}, True),
        ("iam:PutRolePermissionsBoundary", "put_role_boundary", {"policy_arn": POLICY}, False),
        ("iam:TagRole", "tag_role", {"tags": (Tag("team", "x"),)}, True),
        ("iam:TagRole", "tag_role", {"tags": (Tag("team", "x"),)}, False),
    ],
)
def test_role_changes_are_settled_by_reading_the_role(services, action, method, kwargs, made):
    services.audited.call(
        AuditContext(), Change("r"), services.iam.create_role, name="rc", trust_policy=TRUST
    )
    params = {
        "role_name": "rc",
        **{k: ([v.__dict__ for v in val] if k == "tags" else val) for k, val in kwargs.items()},
    }
    call = (lambda: getattr(services.iam, method)(role_name="rc", **kwargs)) if made else None
    seq = crash_after_call(services, action, "arn:aws:iam::123456789012:role/rc", params, call)
    expected = (
        "succeeded" if made else ("unknown" if action == "iam:UpdateAssumeRolePolicy" else "failed")
    )
    assert settle(services, seq) == expected
