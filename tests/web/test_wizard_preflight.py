"""What create reads from AWS before changing anything: the name check (GetRole, plus the
in-memory roles list for other spellings), quotas read within the last minute, and the
account's providers re-read only when the trust policy names one of them."""

from __future__ import annotations

import pytest

from app.aws.errors import NotFound
from app.wizard.catalog import SSM_CORE
from app.wizard.service import FRESH_FOR_CREATE, Wizard
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

TRUST_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
)


@pytest.fixture
def iam_calls(seeded):
    """Names of the IAM operations RoleDesk's client sends, in order."""
    calls: list[str] = []

    def record(event_name: str, **_: object) -> None:
        calls.append(event_name.split(".")[-1])

    client = seeded.clients.client("iam")
    client.meta.events.register("before-call.iam", record)
    yield calls
    client.meta.events.unregister("before-call.iam", record)


def _to_review(client, draft, trust):
    fill_trust(client, draft, trust)
    post(client, f"/create-role/{draft}/permissions", {"nav": "next"})


def test_service_role_create_reads_only_what_it_needs(client, seeded, iam_calls):
    seeded.inventory.refresh()  # loaded once per process (and TTL), not per create
    draft = start(client)
    _to_review(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    iam_calls.clear()
    response = create(client, draft, details("preflight-lean"))
    assert response.status_code == 303
    assert seeded.inventory.find("preflight-lean") is not None  # waits for the re-read
    # Quotas were read moments ago by the steps; no provider is named by a service trust.
    # (The GetRole after CreateRole refreshes the roles list with the new role.)
    assert iam_calls == ["GetRole", "CreateRole", "GetRole"]


def test_saml_trust_rereads_providers_and_refuses_a_deleted_one(client, seeded, iam_calls):
    iam = seeded.clients.client("iam")
    saml = iam.list_saml_providers()["SAMLProviderList"][0]["Arn"]
    draft = start(client)
    _to_review(
        client, draft, {"entity_type": "saml", "saml_provider": saml, "saml_access": "console"}
    )
    iam.delete_saml_provider(SAMLProviderArn=saml)
    iam_calls.clear()
    response = create(client, draft, details("saml-gone"))
    assert response.status_code == 422
    assert "Step 1 (trusted entity) needs attention" in soup(response).select_one("main").text
    assert "ListSAMLProviders" in iam_calls and "CreateRole" not in iam_calls


def test_other_spelling_of_an_existing_role_is_refused(client, seeded, iam_calls):
    seeded.inventory.refresh()
    seeded.clients.client("iam").create_role(
        RoleName="Mixed-Case-Role", AssumeRolePolicyDocument=TRUST_POLICY
    )
    seeded.inventory.refresh()
    draft = start(client)
    _to_review(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    iam_calls.clear()
    response = create(client, draft, details("mixed-case-role"))
    assert response.status_code == 422
    assert "Mixed-Case-Role already exists" in soup(response).select_one("#error-name").text
    assert "CreateRole" not in iam_calls


def test_role_deleted_since_the_list_was_loaded_does_not_block_its_name(client, seeded):
    iam = seeded.clients.client("iam")
    iam.create_role(RoleName="Gone-Role", AssumeRolePolicyDocument=TRUST_POLICY)
    seeded.inventory.refresh()
    iam.delete_role(RoleName="Gone-Role")
    assert seeded.inventory.find("gone-role") is not None  # the list is stale
    draft = start(client)
    _to_review(client, draft, {"entity_type": "service", "service": "lambda.amazonaws.com"})
    response = create(client, draft, details("gone-role"))
    assert response.status_code == 303
    assert seeded.iam.get_role("gone-role").name == "gone-role"
    with pytest.raises(NotFound):
        seeded.iam.get_role("Gone-Role")


def test_quotas_for_create_are_at_most_a_minute_old(seeded, iam_calls):
    now = [1000.0]
    wizard = Wizard(seeded, clock=lambda: now[0])
    wizard.quotas()
    now[0] += FRESH_FOR_CREATE - 1
    wizard.quotas(fresh=True)
    assert iam_calls.count("GetAccountSummary") == 1
    now[0] += 2
    wizard.quotas()  # pages accept older quotas
    assert iam_calls.count("GetAccountSummary") == 1
    wizard.quotas(fresh=True)
    assert iam_calls.count("GetAccountSummary") == 2


def test_ec2_role_run_calls_and_roles_list(client, seeded, iam_calls):
    seeded.inventory.refresh()
    draft = start(client)
    fill_trust(client, draft, {"entity_type": "service", "service": "ec2.amazonaws.com"})
    add_policy(client, draft, SSM_CORE)
    add_policy(client, draft, S3_READ)
    post(client, f"/create-role/{draft}/permissions", {"nav": "next"})
    iam_calls.clear()
    assert create(client, draft, details("lean-ec2")).status_code == 303
    assert seeded.inventory.find("lean-ec2") is not None  # waits for the re-read
    # One GetRole after CreateRole shows the new role in the roles list at once; attaching a
    # policy does not change what the list shows, so the role is not re-read after it.
    assert sorted(iam_calls) == sorted(
        [
            "GetRole",
            "GetInstanceProfile",
            "CreateRole",
            "GetRole",
            "AttachRolePolicy",
            "AttachRolePolicy",
            "CreateInstanceProfile",
            "AddRoleToInstanceProfile",
        ]
    )
    # Calls made side by side come in any order; what depends on what does not.
    create_role = iam_calls.index("CreateRole")
    assert set(iam_calls[:create_role]) == {"GetRole", "GetInstanceProfile"}
    assert iam_calls.index("AddRoleToInstanceProfile") > iam_calls.index("CreateInstanceProfile")
    assert len(seeded.iam.list_attached_role_policies("lean-ec2")) == 2
