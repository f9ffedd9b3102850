"""Trust-policy findings by level (issue 10's list), hostile input (Hypothesis), and the deep
risk scan's shared cache under real threads."""

from __future__ import annotations

import json
import threading

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.policy import PolicyKind, analyse
from app.policy.risk import deep_scan

ACCOUNT = "111122223333"
GITHUB = "token.actions.githubusercontent.com"
GITHUB_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB}"


def trust(statement, **top):
    return json.dumps({"Version": "2012-10-17", **top, "Statement": [statement]}, indent=2)


def codes(text, level=None):
    found = analyse(text, PolicyKind.TRUST, account_id=ACCOUNT).findings
    return [f.code for f in found if level is None or f.level == level]


def test_aws_star_is_a_security_warning_without_condition_and_fine_with_one():
    base = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    assert codes(trust(base)) == ["TRUST_ANY_PRINCIPAL"]
    assert codes(trust(base), "security_warning") == ["TRUST_ANY_PRINCIPAL"]
    limited = {**base, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}}
    assert codes(trust(limited)) == []


def test_oidc_without_audience_and_github_without_sub_are_security_warnings():
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": GITHUB_ARN},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    assert sorted(codes(trust(statement), "security_warning")) == [
        "TRUST_GITHUB_NO_SUB",
        "TRUST_OIDC_NO_AUDIENCE",
    ]
    any_repo = {
        **statement,
        "Condition": {
            "StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"},
            "StringLike": {f"{GITHUB}:sub": "repo:*"},
        },
    }
    assert codes(trust(any_repo)) == ["TRUST_GITHUB_NO_SUB"]


def test_other_account_is_a_warning_this_account_is_not():
    other = {"Effect": "Allow", "Principal": {"AWS": "999988887777"}, "Action": "sts:AssumeRole"}
    assert codes(trust(other), "warning") == ["TRUST_CROSS_ACCOUNT_NO_CONDITION"]
    this = {**other, "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    assert codes(trust(this)) == []
    external = {**other, "Condition": {"StringEquals": {"sts:ExternalId": "x1"}}}
    assert codes(trust(external)) == []


def test_empty_condition_is_a_suggestion_and_missing_version_a_warning():
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {},
    }
    found = analyse(trust(statement), PolicyKind.TRUST).findings
    assert [(f.level, f.code) for f in found] == [("suggestion", "EMPTY_CONDITION")]
    assert (found[0].line, found[0].column) == (10, 7)
    no_version = json.dumps({"Statement": [statement]})
    assert codes(no_version, "warning") == ["MISSING_VERSION"]


def test_size_is_counted_without_whitespace_and_non_ascii_once():
    value = "\u00e9" * 1800  # 1,800 characters; as \u escapes they would be 10,800
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": value}},
    }
    text = json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=8)
    assert len(text) > 2048  # escaped and indented, as a person might paste it
    assert "POLICY_SIZE" not in codes(text)
    statement["Condition"]["StringEquals"]["sts:ExternalId"] = value + "\u00e9" * 100
    longer = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    assert "POLICY_SIZE" in codes(longer)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["Version", "Statement", "Effect", "Principal", "Action", "Condition", "Sid", "AWS"]
            )
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=JSON_VALUES, kind=st.sampled_from(list(PolicyKind)))
def test_any_json_gives_findings_never_an_exception(document, kind):
    analysis = analyse(json.dumps(document), kind, account_id=ACCOUNT, risk_timeout=0)
    for finding in analysis.findings:
        assert finding.message and finding.code.isupper()


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
@example(text="null")  # found by this test on 2026-12-01: it passed with no finding at all
@example(text=" null\n")
def test_any_text_gives_findings_never_an_exception(text):
    analysis = analyse(text, PolicyKind.TRUST, risk_timeout=0)
    assert analysis.document is None or isinstance(analysis.document, dict)
    if analysis.document is None:
        assert analysis.blocks


def test_deep_scan_cache_is_shared_safely_by_threads():
    documents = [
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": f"iam:{a}", "Resource": "*"}],
        }
        for a in ("PassRole", "CreatePolicyVersion", "AttachRolePolicy", "PutRolePolicy")
    ]
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def worker(n):
        try:
            results[n] = [deep_scan(d, timeout=60) for d in documents]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    first = results[0]
    assert all(r == first for r in results.values())
    escalations = [[p["type"] for p in r["PrivilegeEscalation"]["findings"]] for r in first]
    assert escalations[1] == ["CreateNewPolicyVersion"]
    assert escalations[2] == ["AttachRolePolicy"]
