"""The A2 validation table: each rule valid and invalid, including those moto does not
enforce, and the HTML patterns the browser gets agree with the server's rules."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from app.wizard import rules
from app.wizard.steps import Quotas, check_details, check_permissions

CASES = [
    (rules.ROLE_NAME, ["a", "App+Role=,.@_-1", "x" * 64], ["", "x" * 65, "has space", "é", "a/b"]),
    (
        rules.PATH,
        ["/", "/team/", "/a/b/"],
        ["", "team", "/team", "team/", "/" + "a" * 511 + "/", "/tab\there/"],
    ),
    (
        rules.DESCRIPTION,
        ["", "Plain words, café ÿ", "x" * 1000],
        ["x" * 1001, "bell\x07", "emoji \U0001f600"],
    ),
    (
        rules.EXTERNAL_ID,
        ["ab", "Partner:42/x=y@z.q-1,2+3", "x" * 1224],
        ["a", "x" * 1225, "with space", "semi;colon"],
    ),
    (rules.ACCOUNT_ID, ["444455556666"], ["44445555666", "4444555566667", "44445555666a"]),
    (
        rules.INLINE_POLICY_NAME,
        ["S3Access", "a!b#c(d)"],
        ["", "x" * 129, "a/b", "a*b", "a?b", "a b", "a\\b"],
    ),
    (
        rules.COGNITO_POOL_ID,
        ["us-east-1:0f3c1e4e-5a1b-4a3b-9f7e-1d2c3b4a5e6f"],
        ["pool", "us-east-1:XYZ"],
    ),
    (rules.GITHUB_ORG, ["example-org", "octo-org@123456"], ["a/b", "x" * 40, "org@x"]),
    (rules.GITHUB_REPO, ["shop.web_1", "*", "octo-repo@456789"], ["a/b", "a b", "r@"]),
    (
        rules.SERVICE_PRINCIPAL,
        ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"],
        ["EC2.amazonaws.com", "ec2", "ec2.example.com"],
    ),
]


@pytest.mark.parametrize(("rule", "valid", "invalid"), CASES, ids=[c[0].label for c in CASES])
def test_rule(rule, valid, invalid):
    for value in valid:
        assert rule.check(value, required=rule.min_len > 0) is None, value
    for value in invalid:
        assert rule.check(value) is not None, value


def test_github_branch_accepts_at_plus_and_hash():
    assert rules.GITHUB_BRANCH.check("feat/a@b+c#d") is None
    assert rules.GITHUB_BRANCH.check("a b") is not None


def test_required_is_reported_with_the_field_label():
    assert rules.ROLE_NAME.check("") == "Enter the role name."
    assert rules.GITHUB_BRANCH.check("", required=False) is None


@pytest.mark.parametrize(
    ("raw", "hours", "ok"),
    [
        ("1", 1, True),
        ("12", 12, True),
        ("0", None, False),
        ("13", None, False),
        ("two", None, False),
        ("", None, False),
    ],
)
def test_max_session_hours(raw, hours, ok):
    value, error = rules.check_max_session_hours(raw)
    assert (error is None) is ok and value == hours


@pytest.mark.parametrize(
    ("tags", "bad_index"),
    [
        ([("team", "web"), ("Cost Centre", "4 2"), ("a.b:c/d=e+f-g@h_", "")], None),
        ([("aws:owner", "me")], 0),
        ([("AWS:Owner", "me")], 0),
        ([("owner", "aws:me")], 0),
        ([("k" * 129, "v")], 0),
        ([("k", "v" * 257)], 0),
        ([("bad*key", "v")], 0),
        ([("", "value")], 0),
        ([("Team", "a"), ("team", "b")], 1),
        ([("日本", "ü")], None),
    ],
)
def test_tags(tags, bad_index):
    errors = rules.check_tags(tags)
    assert list(errors) == ([] if bad_index is None else [bad_index])


def test_fifty_tags_at_most():
    ok = check_details({"name": "r", "tags": [[f"k{i}", "v"] for i in range(50)]})
    assert "tags" not in ok.errors
    too_many = check_details({"name": "r", "tags": [[f"k{i}", "v"] for i in range(51)]})
    assert "at most 50" in too_many.errors["tags"]


def test_details_defaults_and_errors():
    result = check_details({"name": "ok-name"})
    assert result.errors == {} and result.path == "/" and result.max_session_hours == 1
    bad = check_details(
        {"name": "bad name", "path": "nope", "max_session_hours": "24", "description": "x" * 1001}
    )
    assert set(bad.errors) == {"name", "path", "max_session_hours", "description"}


class Policy:
    def __init__(self, arn):
        self.arn = arn
        self.name = arn.rsplit("/", 1)[-1]


def lookup(arn):
    return Policy(arn) if arn.startswith("arn:aws:iam::aws:policy/") else None


def test_permissions_quota_and_missing_policy():
    arns = [f"arn:aws:iam::aws:policy/P{i}" for i in range(11)]
    over = check_permissions({"policies": arns}, lookup, Quotas())
    assert "AttachedPoliciesPerRoleQuota" in over.errors["policies"]
    assert check_permissions({"policies": arns[:10]}, lookup, Quotas()).errors == {}
    assert check_permissions({"policies": arns}, lookup, Quotas(attached_policies=20)).errors == {}
    gone = check_permissions({"policies": ["arn:aws:iam::1:policy/gone"]}, lookup, Quotas())
    assert "no longer exists" in gone.errors["policies"]


def test_inline_policy_aggregate_limit_and_name():
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::bucket/" + "k" * 10_200,
    }
    big = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    result = check_permissions({"inline_name": "Big", "inline_policy": big}, lookup, Quotas())
    assert "10240" in result.errors["inline_policy"]
    unnamed = check_permissions({"inline_policy": big.replace("k" * 10_200, "k")}, lookup, Quotas())
    assert "inline_name" in unnamed.errors
    pretty = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        },
        indent=40,
    )
    assert len(pretty) > 600
    fine = check_permissions(
        {"inline_name": "P", "inline_policy": pretty}, lookup, Quotas(inline_policy_size=200)
    )
    assert fine.errors == {}  # whitespace does not count


# `make test` installs the front-end files with npm, so node is always here when tests run.
NODE = shutil.which("node")


def test_html_patterns_compile_with_the_v_flag_and_agree_with_the_server():
    """Browsers compile `pattern` with the v flag; an invalid one is ignored with a console
    error. Each must compile, and accept/refuse the same samples as the server."""
    assert NODE is not None, "node (installed with npm) compiles the patterns as browsers do"
    samples = []
    for rule, valid, invalid in CASES:
        if rule.html_pattern:
            for value in valid + invalid:
                if value and len(value) <= rule.max_len and rule.min_len <= len(value):
                    samples.append([rule.html_pattern, value, rule.check(value) is None])
    samples.append([rules.TAG_HTML_PATTERN, "Cost Centre:42", True])
    samples.append([rules.TAG_HTML_PATTERN, "bad*key", False])
    script = (
        "const s = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const out = s.map(([p, v]) => new RegExp('^(?:' + p + ')$', 'v').test(v));"
        "console.log(JSON.stringify(out));"
    )
    result = subprocess.run(
        [NODE, "-e", script], input=json.dumps(samples), text=True, capture_output=True, check=True
    )
    browser = json.loads(result.stdout)
    mismatches = [s for s, b in zip(samples, browser, strict=True) if s[2] != b]
    # The browser checks characters only; the server also refuses \ / * ? in inline names.
    mismatches = [m for m in mismatches if m[0] != rules.INLINE_POLICY_NAME.html_pattern]
    assert mismatches == []
