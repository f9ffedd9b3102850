"""Gateways against moto's server over HTTP: pagination, typed results, errors."""

import pytest

from app.audit.audited import AuditContext, Change
from app.aws.errors import NotFound
from app.aws.types import Role
from app.wizard.trust import service_trust


def make_roles(services, count):
    trust = service_trust("lambda.amazonaws.com")
    ctx = AuditContext()
    for i in range(count):
        services.audited.call(
            ctx,
            Change(f"role-{i}"),
            services.iam.create_role,
            name=f"role-{i:03d}",
            trust_policy=trust,
        )


def test_list_roles_reads_every_page(services):
    make_roles(services, 7)
    roles = list(services.iam.list_roles(page_size=3))
    assert sorted(r.name for r in roles) == [f"role-{i:03d}" for i in range(7)]
    assert all(isinstance(r, Role) and isinstance(r.trust_policy, dict) for r in roles)


def test_get_role_unknown_raises_not_found_with_request_id(services):
    with pytest.raises(NotFound) as caught:
        services.iam.get_role("nope")
    assert caught.value.code == "NoSuchEntity"


def test_aws_managed_policies_are_loaded_in_the_sandbox(services):
    policies = list(services.iam.list_policies("AWS"))
    assert len(policies) == 1582
    names = {p.name for p in policies}
    assert {"AdministratorAccess", "AmazonSSMManagedInstanceCore"} <= names
    job = [p for p in policies if p.is_job_function]
    assert job and all(p.is_aws_managed for p in job)


def test_seed_creates_every_kind_once(seeded):
    from app.sandbox_seed import seed

    roles = {r.name: r for r in seeded.iam.list_roles()}
    assert len(roles) >= 12
    seed(seeded)  # second run leaves the sandbox alone
    assert len(list(seeded.iam.list_roles())) == len(roles)
    customer = list(seeded.iam.list_policies("Local"))
    assert len(customer) == 3
    assert seeded.iam.list_oidc_providers()[0].url == "token.actions.githubusercontent.com"
    assert seeded.iam.list_saml_providers()[0].name == "CorpOkta"
    detail = seeded.iam.get_role("reporting-ec2")
    assert detail.permissions_boundary_arn and detail.tags
    instances = seeded.ec2().list_instances()
    assert len(instances) == 6
    assert {i.state for i in instances} == {"running", "stopped"}
    associations = seeded.ec2().list_associations()
    assert len(associations) == 4
