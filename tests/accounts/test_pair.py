"""The cross-account role pair, through boto3 against the sandbox organization.

What moto enforces, honestly: nothing of the pair's meaning. moto's STS AssumeRole evaluates
neither the trust policy (principal, external ID, PrincipalOrgID, MFA) nor the caller's
sts:AssumeRole permission (aws-iam-behaviour.md B1: "Trust policy ignored. Nonexistent role
OK. Wrong ExternalId OK"). So these tests show that the documents RoleDesk writes are exactly
the pair (B trusts A's role ARN alone, under the condition; A may assume B's role ARN alone),
that they land in the right accounts, that A's role session can really assume B's role and
then acts in account B, and that a failure midway leaves neither account changed.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from sqlalchemy import select

from app.accounts.hub import AccountHub
from app.accounts.model import Account
from app.accounts.pair import (
    EXTERNAL_ID,
    INLINE,
    MANAGED,
    ORGANIZATION,
    Pair,
    assume_policy,
    details,
    pair_plan,
    run_pair,
    usage,
)
from app.audit.audited import AuditContext
from app.aws.errors import NotFound
from app.aws.organizations import OrganizationsGateway
from app.models import AuditEvent
from app.operations import progress
from app.operations.engine import Engine
from app.services import Services
from tests.accounts.conftest import Refuse, account


def boto_as(services: Services, service: str, creds: dict[str, Any]) -> Any:
    return boto3.client(
        service,
        endpoint_url=services.sandbox_endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def short(a: Account) -> str:
    return {"Development": "dev", "Staging": "staging", "Production": "prod"}[a.name]


def pair_for(hub: AccountHub, a: Account, b: Account, name: str, **kw: Any) -> Pair:
    source = hub.iam(a, "alice").get_role(f"{short(a)}-deploy")
    condition = kw.pop("condition", EXTERNAL_ID)
    return Pair(a, source.arn, b, name, condition, **kw)


def run(org: Services, hub: AccountHub, pair: Pair) -> tuple[str, Any]:
    ctx = AuditContext(actor="alice")
    plan = pair_plan(hub, "alice", pair, "us-east-1")
    engine = Engine(org)
    engine.record_start(ctx, plan)
    return ctx.operation_id, engine.run(ctx, plan)


@pytest.mark.parametrize("source_policy", [INLINE, MANAGED])
def test_a_pair_lets_account_a_role_assume_account_b_role(
    org: Services, hub: AccountHub, members: list[str], source_policy: str
):
    dev, prod = account(hub, members[0]), account(hub, members[2])
    name = "from-dev-deploy" if source_policy == INLINE else "from-dev-deploy-managed"
    pair = pair_for(
        hub,
        dev,
        prod,
        name,
        external_id="shop-7f3a",
        managed_policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
        source_policy=source_policy,
    )
    operation_id, result = run(org, hub, pair)
    assert result.ok

    # B: the role trusts exactly A's role, with the external ID; the policy is attached.
    b_iam = hub.iam(prod, "alice")
    role = b_iam.get_role(name)
    (statement,) = role.trust_policy["Statement"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{dev.account_id}:role/dev-deploy"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "shop-7f3a"}}
    assert [p.arn for p in b_iam.list_attached_role_policies(name)] == [
        "arn:aws:iam::aws:policy/ReadOnlyAccess"
    ]
    # A: the role may assume exactly B's role and nothing else, through the chosen policy
    # and only that one.
    a_iam = hub.iam(dev, "alice")
    allowed = [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": pair.role_arn}]
    inline_names = a_iam.list_role_policy_names("dev-deploy")
    attached = {p.arn for p in a_iam.list_attached_role_policies("dev-deploy")}
    if source_policy == INLINE:
        inline = a_iam.get_role_policy("dev-deploy", pair.policy_name)
        assert inline.document["Statement"] == allowed
        assert pair.policy_arn not in attached
        with pytest.raises(NotFound):
            a_iam.get_policy(pair.policy_arn)
    else:
        assert pair.policy_name not in inline_names
        assert pair.policy_arn in attached
        policy = a_iam.get_policy(pair.policy_arn)
        assert (policy.name, policy.path) == (pair.policy_name, "/")
        assert pair.role_arn in policy.description
        document = a_iam.get_policy_document(pair.policy_arn, policy.default_version_id)
        assert isinstance(document, dict) and document["Statement"] == allowed
    # Nothing of the pair anywhere else.
    for other in (hub.accounts().accounts[0], account(hub, members[1])):
        assert name not in {r.name for r in hub.iam(other, "alice").list_roles()}

    # A session of A's role assumes B's role (moto's STS) and then acts in account B.
    hub_sts = hub.hub_clients.client("sts")
    a_creds = hub_sts.assume_role(RoleArn=pair.source_role_arn, RoleSessionName="pipeline")[
        "Credentials"
    ]
    b_creds = boto_as(org, "sts", a_creds).assume_role(
        RoleArn=pair.role_arn, RoleSessionName="pipeline", ExternalId="shop-7f3a"
    )["Credentials"]
    who = boto_as(org, "sts", b_creds).get_caller_identity()
    assert who["Account"] == prod.account_id
    assert who["Arn"].endswith(f":assumed-role/{name}/pipeline")

    # The operation's audit events say which account each call went to.
    with org.db.sessions() as session:
        intents = session.scalars(
            select(AuditEvent).where(
                AuditEvent.operation_id == operation_id, AuditEvent.kind == "intent"
            )
        ).all()
        where = {(e.action, e.account_id) for e in intents}
    in_a = (
        {("iam:PutRolePolicy", dev.account_id)}
        if source_policy == INLINE
        else {("iam:CreatePolicy", dev.account_id), ("iam:AttachRolePolicy", dev.account_id)}
    )
    assert where == {
        ("iam:CreateRole", prod.account_id),
        ("iam:AttachRolePolicy", prod.account_id),
        *in_a,
    }
    # The start record says which kind of policy was made, for the done page.
    recorded = progress.load(org.db, operation_id)
    assert recorded is not None
    assert recorded.details["pair"]["source_policy"] == source_policy
    assert recorded.details["pair"]["policy_arn"] == (
        pair.policy_arn if source_policy == MANAGED else ""
    )


def test_an_organization_pair_trusts_the_role_only_inside_the_organization(
    org: Services, hub: AccountHub, members: list[str]
):
    staging, dev = account(hub, members[1]), account(hub, members[0])
    org_id = OrganizationsGateway(org.clients).describe().org_id
    pair = pair_for(
        hub, staging, dev, "from-staging", condition=ORGANIZATION, org_id=org_id, require_mfa=True
    )
    operation_id, result = run(org, hub, pair)
    assert result.ok
    (statement,) = hub.iam(dev, "alice").get_role("from-staging").trust_policy["Statement"]
    assert statement["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": org_id},
        "Bool": {"aws:MultiFactorAuthPresent": "true"},
    }
    recorded = progress.load(org.db, operation_id)
    assert recorded is not None
    shown = usage(recorded.details["pair"])
    assert "--external-id" not in shown["command"]
    assert "mfa_serial = MFA_DEVICE_ARN" in shown["profile"]


def test_a_half_made_pair_is_rolled_back_in_both_accounts(
    org: Services, hub: AccountHub, members: list[str]
):
    prod, staging = account(hub, members[2]), account(hub, members[1])
    refuse = Refuse({}, "Policy limit reached")
    # The last step (A's inline policy) fails after B's role and its attachment exist.
    hub.hub_clients.hook_every_client("before-call.iam.PutRolePolicy", refuse)
    pair = pair_for(
        hub,
        prod,
        staging,
        "half-made",
        external_id="x-123",
        managed_policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
    )
    operation_id, result = run(org, hub, pair)
    assert not result.ok and refuse.refused == 1
    assert result.undone_order == [
        "Detach arn:aws:iam::aws:policy/ReadOnlyAccess",
        "Delete role half-made",
    ]
    # Neither account keeps anything of it.
    assert "half-made" not in {r.name for r in hub.iam(staging, "alice").list_roles()}
    assert pair.policy_name not in hub.iam(prod, "alice").list_role_policy_names("prod-deploy")
    run_progress = progress.load(org.db, operation_id)
    assert run_progress is not None and run_progress.finished
    assert [s.status for s in run_progress.steps] == ["undone", "undone", "failed"]
    failed = run_progress.steps[-1].last_error
    assert failed is not None
    assert (failed.error_code, failed.request_id) == ("AccessDenied", "refused-1")
    with org.db.sessions() as session:
        undo = session.scalars(
            select(AuditEvent).where(
                AuditEvent.operation_id == operation_id,
                AuditEvent.kind == "intent",
                AuditEvent.action.in_(["iam:DeleteRole", "iam:DetachRolePolicy"]),
            )
        ).all()
        assert {e.account_id for e in undo} == {staging.account_id}


@pytest.mark.parametrize("mfa", [False, True])
def test_usage_shows_the_cli_command_and_profile(mfa: bool):
    shown = usage(
        {
            "role_arn": "arn:aws:iam::222233334444:role/from-dev",
            "role_name": "from-dev",
            "target_account": "222233334444",
            "condition": EXTERNAL_ID,
            "external_id": "ext-1",
            "require_mfa": mfa,
        }
    )
    assert shown["command"].startswith(
        "aws sts assume-role --role-arn arn:aws:iam::222233334444:role/from-dev"
    )
    assert "--external-id ext-1" in shown["command"]
    assert "[profile from-dev-222233334444]" in shown["profile"]
    assert "external_id = ext-1" in shown["profile"]
    assert ("mfa_serial" in shown["profile"]) is mfa


def test_a_half_made_managed_pair_is_rolled_back_in_both_accounts(
    org: Services, hub: AccountHub, members: list[str]
):
    prod, staging = account(hub, members[2]), account(hub, members[1])
    pair = pair_for(
        hub,
        prod,
        staging,
        "half-made-managed",
        external_id="x-123",
        managed_policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
        source_policy=MANAGED,
    )
    # The last step (attaching A's new managed policy) fails after B's role, its
    # attachment and A's policy exist; B's own attach is let through.
    refuse = Refuse({"PolicyArn": pair.policy_arn}, "Policy limit reached")
    hub.hub_clients.hook_every_client("before-call.iam.AttachRolePolicy", refuse)
    operation_id, result = run(org, hub, pair)
    assert not result.ok and refuse.refused == 1
    assert sorted(result.undone_order) == sorted(
        [
            "Detach arn:aws:iam::aws:policy/ReadOnlyAccess",
            "Delete role half-made-managed",
            f"Delete policy {pair.policy_arn}",
        ]
    )
    # Neither account keeps anything of it.
    assert "half-made-managed" not in {r.name for r in hub.iam(staging, "alice").list_roles()}
    a_iam = hub.iam(prod, "alice")
    with pytest.raises(NotFound):
        a_iam.get_policy(pair.policy_arn)
    assert pair.policy_arn not in {p.arn for p in a_iam.list_attached_role_policies("prod-deploy")}
    run_progress = progress.load(org.db, operation_id)
    assert run_progress is not None and run_progress.finished
    statuses = {s.key: s.status for s in run_progress.steps}
    assert statuses == {
        "create": "undone",
        "attach-0": "undone",
        "policy": "undone",
        "allow": "failed",
    }
    with org.db.sessions() as session:
        undo = session.scalars(
            select(AuditEvent).where(
                AuditEvent.operation_id == operation_id,
                AuditEvent.kind == "intent",
                AuditEvent.action.in_(
                    ["iam:DeleteRole", "iam:DetachRolePolicy", "iam:DeletePolicy"]
                ),
            )
        ).all()
        assert {(e.action, e.account_id) for e in undo} == {
            ("iam:DeleteRole", staging.account_id),
            ("iam:DetachRolePolicy", staging.account_id),
            ("iam:DeletePolicy", prod.account_id),
        }


@pytest.mark.parametrize(
    ("role_name", "spelling", "path"),
    [
        ("taken-managed", str, "/"),  # at exactly the pair's ARN
        # Policy names are unique in an account regardless of case and path (CreatePolicy's
        # PolicyName, IAM API reference): CreatePolicy would refuse these too.
        ("taken-case", str.upper, "/"),
        ("taken-path", str, "/elsewhere/"),
    ],
)
def test_a_managed_policy_taken_in_account_a_refuses_the_run_before_any_change(
    org: Services, hub: AccountHub, members: list[str], role_name: str, spelling: Any, path: str
):
    """The form's check cannot see a policy made after it: the run checks again, and must not
    make B's role (nor, on undo, delete a policy it did not make)."""
    dev, staging = account(hub, members[0]), account(hub, members[1])
    pair = pair_for(hub, dev, staging, role_name, external_id="x-9", source_policy=MANAGED)
    # Someone else's policy of that name, made outside RoleDesk.
    taken = (
        hub.clients(dev, "alice")
        .client("iam")
        .create_policy(
            PolicyName=spelling(pair.policy_name),
            Path=path,
            PolicyDocument=json.dumps(assume_policy(pair)),
        )["Policy"]["Arn"]
    )
    ctx = AuditContext(actor="alice")
    plan = pair_plan(hub, "alice", pair, "us-east-1")
    engine = Engine(org)
    engine.record_start(ctx, plan)
    result = run_pair(engine, ctx, pair, plan, hub, "alice")
    assert not result.ok
    assert result.steps["policy"].error is not None
    assert result.steps["policy"].error.code == "EntityAlreadyExists"
    assert taken in result.steps["policy"].error.plain
    assert all(s.status == "not_started" for k, s in result.steps.items() if k != "policy")
    assert role_name not in {r.name for r in hub.iam(staging, "alice").list_roles()}
    assert hub.iam(dev, "alice").get_policy(taken).name == spelling(pair.policy_name)


def test_details_record_which_policy_account_a_got(hub: AccountHub, members: list[str]):
    dev, prod = account(hub, members[0]), account(hub, members[2])
    inline = pair_for(hub, dev, prod, "details-only", external_id="x-1")
    managed = pair_for(hub, dev, prod, "details-only", external_id="x-1", source_policy=MANAGED)
    assert (details(inline)["source_policy"], details(inline)["policy_arn"]) == (INLINE, "")
    assert details(managed)["source_policy"] == MANAGED
    assert details(managed)["policy_arn"] == (
        f"arn:aws:iam::{dev.account_id}:policy/AssumeRole-{prod.account_id}-details-only"
    )
    plan = pair_plan(hub, "alice", managed, "us-east-1")
    assert plan.step("allow").depends_on == ("create", "policy")
    assert plan.step("policy").depends_on == ()
