"""Accuracy of app.policy against corpora stored beside this file (each case names its public
source): AWS's 1,582 managed policies (moto's copy) give no error; real trust policies give no
error; invalid trust policies are each refused by the rule they break; each privilege-
escalation method is found when present and not found when one action is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from moto.iam.aws_managed_policies import aws_managed_policies_data

from app.policy import HeldPolicy, PolicyKind, analyse, role_risks

HERE = Path(__file__).parent
ACCOUNT = "111122223333"


def load(name):
    return json.loads((HERE / name).read_text(encoding="utf-8"))


def text_of(policy):
    if isinstance(policy, str) and policy.startswith("TEXT:"):
        return policy.removeprefix("TEXT:")
    return json.dumps(policy, indent=4, ensure_ascii=False)


def test_every_aws_managed_policy_has_no_error():
    policies = json.loads(aws_managed_policies_data)
    assert len(policies) == 1582
    failures = {}
    for name, policy in policies.items():
        analysis = analyse(json.dumps(policy["Document"]), PolicyKind.IDENTITY, risk_timeout=0)
        if analysis.errors:
            failures[name] = [f.message for f in analysis.errors]
    assert failures == {}


VALID = load("trust_valid.json")


def test_trust_corpus_is_large_enough_and_sourced():
    assert len(VALID) >= 50
    assert all(case["source"].startswith("https://") for case in VALID)


@pytest.mark.parametrize("case", VALID, ids=[c["name"] for c in VALID])
def test_real_trust_policies_have_no_error(case):
    analysis = analyse(text_of(case["policy"]), PolicyKind.TRUST, account_id=ACCOUNT)
    assert analysis.errors == []


INVALID = load("trust_invalid.json")


def test_invalid_corpus_is_large_enough():
    assert len(INVALID) >= 40


@pytest.mark.parametrize("case", INVALID, ids=[c["rule"] for c in INVALID])
def test_invalid_trust_policies_are_refused_by_their_rule(case):
    analysis = analyse(text_of(case["policy"]), PolicyKind.TRUST, account_id=ACCOUNT)
    assert analysis.blocks
    assert case["code"] in [f.code for f in analysis.errors]


ESCALATIONS = load("privilege_escalation.json")


@pytest.mark.parametrize("case", ESCALATIONS, ids=[c["method"] for c in ESCALATIONS])
def test_privilege_escalation_found_and_almost_not(case):
    code = f"PRIVILEGE_ESCALATION_{case['method']}"
    has = role_risks([HeldPolicy("p", case["has"])], timeout=30)
    assert code in [f.code for f in has]
    assert all(f.level == "security_warning" for f in has if f.code == code)
    almost = role_risks([HeldPolicy("p", case["almost"])], timeout=30)
    assert code not in [f.code for f in almost]


def test_escalation_across_two_attached_policies_is_one_path():
    pass_role = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "*",
            }
        ],
    }
    run = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*"}],
    }
    found = role_risks([HeldPolicy("A", pass_role), HeldPolicy("B", run)], timeout=30)
    # cloudsplaining counts actions without resource constraints, as here.
    path = [f for f in found if f.code == "PRIVILEGE_ESCALATION_CreateEC2WithExistingIP"]
    assert path and path[0].subject == "A, B"
    boundary = HeldPolicy(
        "NoIam",
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}],
        },
    )
    limited = role_risks([HeldPolicy("A", pass_role), HeldPolicy("B", run)], boundary, timeout=30)
    assert "PRIVILEGE_ESCALATION_CreateEC2WithExistingIP" not in [f.code for f in limited]
