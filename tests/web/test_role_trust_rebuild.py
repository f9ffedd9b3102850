"""Rebuilding a role's trust policy with the wizard's trusted-entity forms (issue 11): the form
opens prefilled from the current document (or in the custom editor), refuses bad input beside
the field before any AWS call, and goes through the trust editor's review, risk gate, stale
check and apply; checked in the sandbox through boto3."""

from __future__ import annotations

import json

from app.wizard.trust import GITHUB_HOST, account_trust, service_trust
from tests.conftest import csrf_token_for
from tests.web.test_role_changes import boto, form_fields, make_role, post, soup

OTHER = "210987654321"


def checked(page, name):
    box = page.select_one(f'input[name="{name}"][checked]')
    return box["value"] if box else None


def test_the_form_opens_prefilled_from_the_current_trust_policy(client, seeded, sandbox):
    make_role(seeded, "prefill-ec2")  # ec2.amazonaws.com
    page = soup(client.get("/roles/prefill-ec2/trust/rebuild"))
    assert checked(page, "entity_type") == "service"
    assert checked(page, "service_name") == "EC2"
    assert "ec2.amazonaws.com" in page.select_one("#trust-json").text

    partner = account_trust(OTHER, "partner-42", require_mfa=True)
    boto(sandbox).update_assume_role_policy(
        RoleName="prefill-ec2", PolicyDocument=json.dumps(partner)
    )
    page = soup(client.get("/roles/prefill-ec2/trust/rebuild"))
    assert checked(page, "entity_type") == "account"
    assert checked(page, "account_choice") == "other"
    assert page.select_one("#field-account_id")["value"] == OTHER
    assert page.select_one("#field-external_id")["value"] == "partner-42"
    assert page.select_one("#field-require_mfa").has_attr("checked")

    github = soup(client.get("/roles/github-actions-deploy/trust/rebuild"))
    assert checked(github, "entity_type") == "web_identity"
    assert github.select_one("#field-web_provider option[selected]")["value"].endswith(GITHUB_HOST)
    assert github.select_one("#field-github_org")["value"]


def test_a_document_the_forms_cannot_express_opens_in_the_custom_editor(client, seeded, sandbox):
    make_role(seeded, "prefill-two")
    two = {
        "Version": "2012-10-17",
        "Statement": [
            service_trust("ec2.amazonaws.com")["Statement"][0],
            service_trust("lambda.amazonaws.com")["Statement"][0],
        ],
    }
    boto(sandbox).update_assume_role_policy(RoleName="prefill-two", PolicyDocument=json.dumps(two))
    page = soup(client.get("/roles/prefill-two/trust/rebuild"))
    assert checked(page, "entity_type") == "custom"
    assert json.loads(page.select_one("#field-custom_policy").text) == two


def _review(client, name, values):
    base = soup(client.get(f"/roles/{name}/trust/rebuild")).select_one('input[name="base"]')
    return post(client, f"/roles/{name}/trust/rebuild", {**values, "base": base["value"]})


PARTNER = {
    "entity_type": "account",
    "account_choice": "other",
    "account_id": OTHER,
    "require_external_id": "1",
    "external_id": "partner-42",
    "nav": "review",
}


def test_rebuilt_trust_is_reviewed_gated_and_applied(client, seeded, sandbox):
    make_role(seeded, "rebuild-me")
    bad = _review(client, "rebuild-me", {**PARTNER, "account_id": "12"})
    assert bad.status_code == 422
    assert "12 digits" in soup(bad).select_one("#error-account_id").text

    review = _review(client, "rebuild-me", PARTNER)
    assert review.status_code == 200
    page = soup(review)
    diff = page.select_one("#change-diff").text
    assert "+" in diff and OTHER in diff and "ec2.amazonaws.com" in diff
    action = "/roles/rebuild-me/trust/apply"
    data = form_fields(page, action)
    data["acknowledge"] = [b["value"] for b in page.select('input[name="acknowledge"]')]
    applied = post(client, action, data)
    assert applied.status_code == 303, applied.text[:500]
    doc = boto(sandbox).get_role(RoleName="rebuild-me")["Role"]["AssumeRolePolicyDocument"]
    assert doc == account_trust(OTHER, "partner-42")


def test_a_rebuild_based_on_a_stale_trust_policy_applies_nothing(client, seeded, sandbox):
    make_role(seeded, "rebuild-raced")
    review = soup(_review(client, "rebuild-raced", PARTNER))
    data = form_fields(review, "/roles/rebuild-raced/trust/apply")
    data["acknowledge"] = [b["value"] for b in review.select('input[name="acknowledge"]')]
    other = service_trust("ecs-tasks.amazonaws.com")
    boto(sandbox).update_assume_role_policy(
        RoleName="rebuild-raced", PolicyDocument=json.dumps(other)
    )
    refused = post(client, "/roles/rebuild-raced/trust/apply", data)
    assert refused.status_code == 409
    doc = boto(sandbox).get_role(RoleName="rebuild-raced")["Role"]["AssumeRolePolicyDocument"]
    assert doc == other


def test_the_live_preview_and_the_picker_answer_fragments(client, seeded):
    make_role(seeded, "rebuild-live")
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf_token_for(client)}
    preview = client.post(
        "/roles/rebuild-live/trust/rebuild/preview",
        data={"entity_type": "service", "service_name": "Lambda"},
        headers=htmx,
    )
    assert preview.status_code == 200 and "<html" not in preview.text
    assert "lambda.amazonaws.com" in soup(preview).select_one("#trust-json").text
    cases = client.post(
        "/roles/rebuild-live/trust/rebuild/picker?part=use_cases",
        data={"entity_type": "service", "service_name": "EC2"},
        headers=htmx,
    )
    assert cases.status_code == 200 and soup(cases).select('input[name="use_case"]')
    # Without htmx the picker's address leads back to the form.
    plain = post(client, "/roles/rebuild-live/trust/rebuild/picker", {})
    assert plain.status_code == 303
    assert plain.headers["location"] == "/roles/rebuild-live/trust/rebuild"
    # Without JavaScript: "Show use cases" shows the form again with the service's use cases.
    shown = post(
        client,
        "/roles/rebuild-live/trust/rebuild",
        {"entity_type": "service", "service_name": "EC2", "nav": "choose_service"},
    )
    assert shown.status_code == 200 and soup(shown).select('input[name="use_case"]')
