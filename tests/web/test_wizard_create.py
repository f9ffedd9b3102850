"""The create run: rollback with a failure injected at each step, double submit, resume
after a restart, expiry, and one plain-form journey per trusted-entity type."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.aws.errors import NotFound
from app.main import create_app
from app.models import AuditEvent
from app.services import build_services
from app.wizard.catalog import SSM_CORE
from app.wizard.drafts import PURGE_EVERY, DraftStore
from tests.conftest import csrf_token_for
from tests.web.test_wizard_flow import (
    S3_READ,
    add_policy,
    create,
    details,
    fill_trust,
    post,
    soup,
    start,
)

INLINE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::reports"}
    ],
}


def ec2_draft(client) -> str:
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "ec2.amazonaws.com"})
    add_policy(client, draft, SSM_CORE)
    add_policy(client, draft, S3_READ)
    post(
        client,
        f"/create-role/{draft}/permissions",
        {"inline_name": "Reports", "inline_policy": json.dumps(INLINE)},
    )
    return draft


def role_exists(services, name) -> bool:
    try:
        services.iam.get_role(name)
    except NotFound:
        return False
    return True


def profile_exists(services, name) -> bool:
    try:
        services.iam.get_instance_profile(name)
    except NotFound:
        return False
    return True


def entries_of(services, operation_id):
    """The operation's AWS calls (intents and outcomes); the engine's start and finish
    records of the plan are left out (tests/aws/test_operations_engine.py checks those)."""
    with services.db.session() as session:
        rows = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.operation_id == operation_id, AuditEvent.kind != "record")
            .order_by(AuditEvent.seq)
        ).all()
        return [(r.kind, r.action, r.outcome) for r in rows]


def fail_on(monkeypatch, services, method: str, when: dict | None = None):
    """Make calls of an IAM client method fail as AWS would (LimitExceeded): every call, or
    those whose arguments include `when`. Chosen by argument, not by call count: the
    attaches of a create run side by side, in no fixed order."""
    client = services.clients.client("iam")
    original = getattr(client, method)

    def failing(**kwargs):
        if when is None or when.items() <= kwargs.items():
            raise ClientError(
                {
                    "Error": {"Code": "LimitExceeded", "Message": f"injected failure in {method}"},
                    "ResponseMetadata": {"RequestId": "req-injected", "HTTPStatusCode": 409},
                },
                method,
            )
        return original(**kwargs)

    monkeypatch.setattr(client, method, failing)


# After CreateRole, the attaches, the inline policy and CreateInstanceProfile run side by
# side; AddRoleToInstanceProfile follows CreateInstanceProfile. A failure undoes everything
# the run made, its side-by-side siblings included, newest first (plan order within a wave).
STEPS = [
    ("create_role", None, "Create the role", []),
    (
        "attach_role_policy",
        {"PolicyArn": SSM_CORE},
        "Attach AmazonSSMManagedInstanceCore",
        [
            "Delete the instance profile",
            "Delete inline policy Reports",
            "Detach AmazonS3ReadOnlyAccess",
            "Delete the role",
        ],
    ),
    (
        "attach_role_policy",
        {"PolicyArn": S3_READ},
        "Attach AmazonS3ReadOnlyAccess",
        [
            "Delete the instance profile",
            "Delete inline policy Reports",
            "Detach AmazonSSMManagedInstanceCore",
            "Delete the role",
        ],
    ),
    (
        "put_role_policy",
        None,
        "Add inline policy Reports",
        [
            "Delete the instance profile",
            "Detach AmazonS3ReadOnlyAccess",
            "Detach AmazonSSMManagedInstanceCore",
            "Delete the role",
        ],
    ),
    (
        "create_instance_profile",
        None,
        "Create instance profile rb",
        [
            "Delete inline policy Reports",
            "Detach AmazonS3ReadOnlyAccess",
            "Detach AmazonSSMManagedInstanceCore",
            "Delete the role",
        ],
    ),
    (
        "add_role_to_instance_profile",
        None,
        "Add the role to the instance profile",
        [
            "Delete the instance profile",
            "Delete inline policy Reports",
            "Detach AmazonS3ReadOnlyAccess",
            "Detach AmazonSSMManagedInstanceCore",
            "Delete the role",
        ],
    ),
]


@pytest.mark.parametrize(
    ("method", "when", "step", "undone"),
    STEPS,
    ids=[f"{m}-{(w or {}).get('PolicyArn', '').rsplit('/', 1)[-1]}" for m, w, _, _ in STEPS],
)
def test_failure_at_each_step_rolls_back_everything(
    client, seeded, monkeypatch, method, when, step, undone
):
    draft = ec2_draft(client)
    fail_on(monkeypatch, seeded, method, when)
    response = create(client, draft, details("rb"))
    assert response.status_code == 303
    page = soup(client.get(response.headers["location"]))
    text = page.get_text(" ")
    assert f"Step that failed: {step}" in " ".join(text.split())
    assert "LimitExceeded" in text and "req-injected" in text
    # Nothing of this run is left in AWS.
    assert not role_exists(seeded, "rb")
    assert not profile_exists(seeded, "rb")
    # The draft records the failure and can be retried.
    stored = DraftStore(seeded.db).get(draft)
    assert stored.status == "failed" and stored.failure["rolled_back"] == undone
    # The audit log shows the failed call and the undo calls, all under one operation id.
    entries = entries_of(seeded, stored.operation_id)
    failed = [a for k, a, o in entries if k == "outcome" and o == "failed"]
    assert failed == [ACTIONS[method]]
    succeeded = [a for k, a, o in entries if k == "outcome" and o == "succeeded"]
    done_count = len(succeeded) - len(undone)
    assert succeeded[done_count:] == [undo_action(label) for label in undone]
    assert len(entries) == 2 * (done_count + 1 + len(undone))  # intent + outcome per call


ACTIONS = {
    "create_role": "iam:CreateRole",
    "attach_role_policy": "iam:AttachRolePolicy",
    "put_role_policy": "iam:PutRolePolicy",
    "create_instance_profile": "iam:CreateInstanceProfile",
    "add_role_to_instance_profile": "iam:AddRoleToInstanceProfile",
}


def undo_action(label: str) -> str:
    if label.startswith("Detach"):
        return "iam:DetachRolePolicy"
    return {
        "Delete the role": "iam:DeleteRole",
        "Delete inline policy Reports": "iam:DeleteRolePolicy",
        "Delete the instance profile": "iam:DeleteInstanceProfile",
    }[label]


def test_retry_after_failure_creates_the_role(client, seeded, monkeypatch):
    draft = ec2_draft(client)
    fail_on(monkeypatch, seeded, "put_role_policy")
    create(client, draft, details("retry-me"))
    monkeypatch.undo()
    response = create(client, draft, details("retry-me"))
    assert response.headers["location"].endswith("/done")
    assert role_exists(seeded, "retry-me") and profile_exists(seeded, "retry-me")


def test_double_submit_sequential_makes_one_role(client, seeded):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    first = create(client, draft, details("once"))
    second = create(client, draft, details("once"))
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == f"/create-role/{draft}/done"
    assert [r.name for r in seeded.iam.list_roles()].count("once") == 1


def test_double_submit_from_two_tabs_at_once_makes_one_role(client, seeded):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    token = csrf_token_for(client)
    barrier = threading.Barrier(2)
    results = []

    def submit():
        with TestClient(client.app) as tab:
            tab.cookies.update(client.cookies)
            barrier.wait()
            results.append(
                tab.post(
                    f"/create-role/{draft}/create",
                    data={"csrf_token": token, **details("twice")},
                    follow_redirects=False,
                )
            )

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [303, 303]
    assert [r.name for r in seeded.iam.list_roles()].count("twice") == 1
    with seeded.db.session() as session:
        creates = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "iam:CreateRole",
                AuditEvent.kind == "intent",
                AuditEvent.target.like("%role/twice"),
            )
        ).all()
    assert len(creates) == 1


def test_resume_after_restart(client, seeded, settings, sandbox):
    draft = start(client)
    fill_trust(
        client,
        draft,
        {
            "entity_type": "account",
            "account_choice": "other",
            "account_id": "444455556666",
            "require_mfa": "1",
        },
    )
    add_policy(client, draft, S3_READ)
    # A new process: new services and app on the same database; the browser keeps its
    # cookies, and its server-side session survives the restart too.
    restarted = build_services(settings, sandbox_endpoint=sandbox.endpoint_url)
    try:
        with TestClient(create_app(restarted), cookies=dict(client.cookies)) as again:
            listing = soup(again.get("/create-role"))
            links = [a["href"] for a in listing.select("table a")]
            assert f"/create-role/{draft}/permissions" in links
            page = soup(again.get(f"/create-role/{draft}/permissions"))
            assert [li.code.text for li in page.select("#chosen li")] == ["AmazonS3ReadOnlyAccess"]
            trust = soup(again.get(f"/create-role/{draft}/trust"))
            assert trust.select_one("#field-account_id")["value"] == "444455556666"
    finally:
        restarted.db.dispose()


def test_expired_drafts_are_not_resumable_and_are_purged(services):
    now = datetime(2026, 11, 28, tzinfo=UTC)
    clock = {"now": now}
    store = DraftStore(services.db, clock=lambda: clock["now"])
    draft = store.create("alice")
    assert [d.id for d in store.resumable("alice")] == [draft.id]
    clock["now"] = now + timedelta(days=7, seconds=1)
    assert store.get(draft.id) is None and store.resumable("alice") == []
    assert not store.claim(draft.id, "op")
    assert store.purge_expired() == 1
    clock["now"] = now
    assert store.get(draft.id) is None


def test_opening_create_role_purges_expired_drafts_at_most_every_few_minutes(services):
    now = datetime(2026, 11, 28, tzinfo=UTC)
    clock = {"now": now}
    store = DraftStore(services.db, clock=lambda: clock["now"])
    store.create("alice"), store.create("alice")
    purged_at = now + timedelta(days=7, seconds=1)  # both expired
    clock["now"] = purged_at
    assert store.purge_expired_if_due() == 2
    clock["now"] = now  # a draft made back then: already expired at purged_at
    store.create("alice")
    clock["now"] = purged_at + PURGE_EVERY - timedelta(seconds=1)
    assert store.purge_expired_if_due() == 0  # not due: the expired draft stays for now
    clock["now"] = purged_at + PURGE_EVERY
    assert store.purge_expired_if_due() == 1
    assert store.purge_expired() == 0


def test_edit_step_reads_and_writes_only_the_callers_editable_draft(services):
    now = datetime(2026, 11, 28, tzinfo=UTC)
    clock = {"now": now}
    store = DraftStore(services.db, clock=lambda: clock["now"])
    draft = store.create("alice", {"trust": {"entity_type": "service"}})

    def add_one(stored):
        return {"policies": [*stored.step("permissions").get("policies", []), "p"]}

    assert store.edit_step(draft.id, "bob", "permissions", add_one) is None  # not bob's
    saved = store.edit_step(draft.id, "alice", "permissions", add_one)
    again = store.edit_step(draft.id, "alice", "permissions", add_one)  # computed from saved
    assert saved.step("permissions") == {"policies": ["p"]}
    assert again.step("permissions") == {"policies": ["p", "p"]}
    assert store.get(draft.id).data == {**draft.data, "permissions": {"policies": ["p", "p"]}}
    assert store.claim(draft.id, "op")
    creating = store.edit_step(draft.id, "alice", "permissions", add_one)
    assert not creating.editable and creating.step("permissions") == {"policies": ["p", "p"]}
    other = store.create("alice")
    clock["now"] = now + timedelta(days=7, seconds=1)
    assert store.edit_step(other.id, "alice", "permissions", add_one) is None  # expired


def test_unknown_or_other_peoples_drafts_are_404(client, services):
    assert client.get("/create-role/not-a-uuid/trust").status_code == 404
    other = DraftStore(services.db).create("somebody-else")
    assert client.get(f"/create-role/{other.id}/trust").status_code == 404


def journey(client, trust_values, name):
    draft = start(client)
    response = fill_trust(client, draft, trust_values)
    assert response.status_code == 303, BeautifulSoup(response.text, "html.parser").select(
        ".field-error"
    )
    post(client, f"/create-role/{draft}/permissions", {"nav": "next"})
    response = create(client, draft, details(name))
    assert response.headers["location"] == f"/create-role/{draft}/done"
    return draft


def test_journey_per_type_lands_the_exact_trust_policy(client, seeded):
    account = seeded.identity.account
    github = f"arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com"
    saml = f"arn:aws:iam::{account}:saml-provider/CorpOkta"
    custom = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
    cases = {
        "j-account": (
            {
                "entity_type": "account",
                "account_choice": "other",
                "account_id": "444455556666",
                "require_external_id": "1",
                "external_id": "xyz-123",
            },
            {
                "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
                "Condition": {"StringEquals": {"sts:ExternalId": "xyz-123"}},
            },
        ),
        "j-github": (
            {
                "entity_type": "web_identity",
                "web_provider": github,
                "github_org": "example-org",
                "github_repo": "shop",
            },
            {"Principal": {"Federated": github}},
        ),
        "j-saml": (
            {"entity_type": "saml", "saml_provider": saml, "saml_access": "console"},
            {"Action": "sts:AssumeRoleWithSAML"},
        ),
        "j-custom": (
            {"entity_type": "custom", "custom_policy": json.dumps(custom)},
            {"Action": ["sts:AssumeRole", "sts:TagSession"]},
        ),
    }
    for name, (values, expected) in cases.items():
        journey(client, values, name)
        statement = seeded.iam.get_role(name).trust_policy["Statement"][0]
        for key, value in expected.items():
            assert statement[key] == value, (name, key)


def test_existing_instance_profile_of_the_same_name_is_refused_before_create(client, seeded):
    from app.audit.audited import AuditContext, Change

    seeded.audited.call(
        AuditContext(actor="t"),
        Change("profile"),
        seeded.iam.create_instance_profile,
        name="lonely-profile",
    )
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "ec2.amazonaws.com"})
    post(client, f"/create-role/{draft}/permissions", {"nav": "next"})
    response = create(client, draft, details("lonely-profile"))
    assert response.status_code == 422
    assert "instance profile named lonely-profile" in soup(response).select_one("#error-name").text
    assert not role_exists(seeded, "lonely-profile")


def test_done_page_while_creating_and_when_the_run_was_cut_short(client, services):
    store = DraftStore(services.db)
    draft = start(client)
    assert store.claim(draft, "op-1")
    page = client.get(f"/create-role/{draft}/done")
    assert "Creating the role" in page.text and "Check progress" in page.text
    assert 'http-equiv="refresh"' not in page.text  # never a timed reload (WCAG 2.2.1)
    late = DraftStore(services.db, clock=lambda: datetime.now(UTC) - timedelta(minutes=11))
    other = start(client)
    assert late.claim(other, "op-2")
    stale = client.get(f"/create-role/{other}/done")
    assert "probably stopped" in stale.text and "Check progress" not in stale.text
    # Nothing will move: "Check progress" is not offered, and its request does not wait.
    assert "probably stopped" in client.get(f"/create-role/{other}/done?wait=1").text
