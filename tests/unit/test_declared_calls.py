"""Every AWS call is declared; changes refuse to run outside the audited path; the published
IAM policy matches the declarations."""

import json
from pathlib import Path

import pytest

from app.aws.calls import REGISTRY, UnauditedChange, audit_guard, changes, required_policy
from app.aws.clients import AwsClients
from app.aws.ec2 import Ec2Gateway
from app.aws.iam import IamGateway
from app.permissions import policy_json

ROOT = Path(__file__).resolve().parents[2]


def test_every_public_gateway_method_is_declared():
    for cls in (IamGateway, Ec2Gateway):
        for name, member in vars(cls).items():
            if name.startswith("_") or not callable(member):
                continue
            assert f"{cls.__name__}.{name}" in REGISTRY, f"{cls.__name__}.{name} undeclared"


def test_a_change_outside_the_audited_path_is_refused_before_any_call():
    gateway = IamGateway(
        AwsClients(region="us-east-1", endpoint_url="http://127.0.0.1:9", sandbox=True)
    )
    with pytest.raises(UnauditedChange):
        gateway.delete_role("anything")


def test_the_guard_opens_for_exactly_one_action():
    calls = []

    class Fake:
        @changes("test:DoThing")
        def do(self):
            calls.append(1)

    with audit_guard("test:OtherThing"), pytest.raises(UnauditedChange):
        Fake().do()
    with audit_guard("test:DoThing"):
        Fake().do()
    assert calls == [1]
    REGISTRY.pop("test_the_guard_opens_for_exactly_one_action.<locals>.Fake.do")


def test_required_permissions_file_matches_the_declarations():
    published = (ROOT / "docs" / "required-permissions.json").read_text()
    assert published == policy_json(), "run `roledesk permissions --write`"


def test_policy_has_pass_role_and_excludes_sandbox_only_calls():
    policy = required_policy()
    actions = [a for s in policy["Statement"] for a in s["Action"]]  # type: ignore[index]
    assert "iam:PassRole" in actions
    assert "iam:CreateRole" in actions and "iam:ListRoles" in actions
    assert "ec2:RunInstances" not in actions
    json.dumps(policy)
