"""Policy checks in the wizard (issue 10): the live check route (htmx), the same findings
without JavaScript, and the review gate for an administrator-equivalent role."""

from __future__ import annotations

import json
import time

from tests.web.test_wizard_flow import create, details, fill_trust, post, soup, start

GITHUB = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
ANY_GITHUB = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": GITHUB},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
                },
            }
        ],
    },
    indent=4,
)


def settled(client, url):
    """The page once the deep risk scan has answered (on a busy machine the first render
    may say the scan is still running, as a person would see)."""
    for _ in range(100):
        page = soup(client.get(url))
        if "RISK_SCAN_PENDING" not in page.text:
            return page
        time.sleep(0.1)
    raise AssertionError("the risk scan did not finish")


def test_live_check_returns_findings_with_line_and_column(client):
    draft = start(client)
    broken = (
        '{\n  "Version": "2012-10-17",\n  "Statement": [{"Effect": "Allow", '
        '"Principal": "*", "Action": "sts:AssumeRole"}]\n}'
    )
    response = post(
        client,
        f"/create-role/{draft}/check/trust",
        {"custom_policy": broken},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "<html" not in response.text
    area = soup(response).select_one("#custom-policy-findings")
    [error] = area.select("li.finding-error")
    assert "Line 3, column" in error.text and "TRUST_PRINCIPAL_STAR" in error.text


def test_live_check_of_inline_policy_and_unknown_kind(client):
    draft = start(client)
    inline = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    )
    response = post(client, f"/create-role/{draft}/check/inline", {"inline_policy": inline})
    codes = [c.text for c in soup(response).select("#inline-policy-findings code")]
    assert codes == ["ADMIN_ACCESS"]
    assert post(client, f"/create-role/{draft}/check/other", {}).status_code == 404


def test_without_javascript_the_trust_page_shows_the_same_findings(client):
    draft = start(client)
    page = fill_trust(
        client, draft, {"entity_type": "custom", "custom_policy": ANY_GITHUB}, nav="preview"
    )
    assert page.status_code == 200
    area = soup(page).select_one("#custom-policy-findings")
    codes = [c.text for c in area.select("li.finding-security_warning code")]
    assert codes == ["TRUST_GITHUB_NO_SUB"]
    live = post(client, f"/create-role/{draft}/check/trust", {"custom_policy": ANY_GITHUB})
    assert [c.text for c in soup(live).select("li code")] == codes


def test_review_lists_security_warnings_first_and_gates_create(client, seeded):
    draft = start(client)
    assert (
        fill_trust(
            client, draft, {"entity_type": "custom", "custom_policy": ANY_GITHUB}
        ).status_code
        == 303
    )
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    post(client, f"/create-role/{draft}/permissions", {"add": admin})
    review = soup(client.get(f"/create-role/{draft}/review"))
    items = review.select("#review-findings li")
    levels = [li["class"][1] for li in items]
    assert levels[:2] == ["finding-security_warning"] * 2
    assert levels == sorted(levels, key=lambda c: c != "finding-security_warning")
    boxes = review.select("#review-findings input[name=acknowledge]")
    labels = [b.find_parent("label").text for b in boxes]
    assert any("ADMIN_ACCESS in AdministratorAccess" in text for text in labels)
    assert any("TRUST_GITHUB_NO_SUB in Trust policy" in text for text in labels)
    values = details("admin-gated")
    # One of two acknowledged: still refused, nothing created.
    partial = create(client, draft, {**values, "acknowledge": boxes[0]["value"]})
    assert partial.status_code == 422
    assert "1 not acknowledged" in soup(partial).select_one("#error-acknowledge").text
    kept = soup(partial).select("#review-findings input[name=acknowledge][checked]")
    assert [b["value"] for b in kept] == [boxes[0]["value"]]
    done = create(client, draft, {**values, "acknowledge": [b["value"] for b in boxes]})
    assert done.status_code == 303
    assert seeded.iam.get_role("admin-gated").name == "admin-gated"


def test_sandbox_review_says_local_checks_stand_alone(client):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    review = soup(client.get(f"/create-role/{draft}/review"))
    text = " ".join(review.select_one("#policy-review").text.split())
    assert "RoleDesk's own checks alone" in text and "no IAM Access Analyzer" in text
    assert "No findings" in text


def test_step_two_checks_the_chosen_policies_together_and_the_boundary(client):
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    post(
        client,
        f"/create-role/{draft}/permissions",
        {"add": "arn:aws:iam::aws:policy/IAMFullAccess"},
    )
    page = settled(client, f"/create-role/{draft}/permissions")
    area = page.select_one("#chosen-policy-findings")
    codes = [c.text for c in area.select("li.finding-security_warning code")]
    assert "PRIVILEGE_ESCALATION_AttachRolePolicy" in codes
    assert "IAMFullAccess" in area.text
    # A boundary that allows no IAM action removes the escalation paths.
    boundary = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    post(client, f"/create-role/{draft}/permissions", {"boundary": boundary})
    limited = settled(client, f"/create-role/{draft}/permissions")
    codes = [c.text for c in limited.select("#chosen-policy-findings code")]
    assert not [c for c in codes if c.startswith("PRIVILEGE_ESCALATION_")]
