"""Example data for a new sandbox: roles of every trusted-entity kind, customer managed
policies, identity providers and EC2 instances, created through the audited path like any
other change RoleDesk makes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.accounts.hub import AccountHub
from app.accounts.model import ORGANIZATIONS, Account
from app.accounts.spoke import SPOKE_POLICY_NAME, hub_principal, spoke_policy, spoke_trust
from app.audit.audited import AuditContext, Change
from app.aws.ec2 import Ec2Gateway
from app.aws.errors import AwsError, NotFound
from app.aws.iam import IamGateway
from app.aws.organizations import OrganizationsGateway
from app.aws.sandbox import set_role_dates, use_roles
from app.aws.sts import StsGateway
from app.aws.types import Tag
from app.services import Services
from app.wizard.trust import service_trust

ACTOR = "sandbox-seed"
MARKER_ROLE = "web-app-ec2"
PARTNER_ACCOUNT = "444455556666"
VENDOR_ACCOUNT = "777788889999"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_SUB = "repo:example-org/shop:ref:refs/heads/main"
COGNITO_POOL = "us-east-1:0f3c1e4e-5a1b-4a3b-9f7e-1d2c3b4a5e6f"
SAML_PROVIDER = "CorpOkta"


def _statement(effect: str, actions: list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": effect, "Action": actions, "Resource": resource}


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _aws(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


@dataclass
class SeedRole:
    name: str
    trust: dict[str, Any]
    description: str
    managed: list[str] = field(default_factory=list)
    inline: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    path: str = "/"
    boundary: str | None = None
    instance_profile: bool = False
    max_session_hours: int = 1


CUSTOMER_POLICIES: dict[str, tuple[str, dict[str, Any]]] = {
    "AppDataReadOnly": (
        "Read the application's data bucket.",
        _policy(
            _statement(
                "Allow",
                ["s3:GetObject", "s3:ListBucket"],
                ["arn:aws:s3:::example-app-data", "arn:aws:s3:::example-app-data/*"],
            )
        ),
    ),
    "DeployPipelineAccess": (
        "What the deploy pipeline may do: push images, update ECS services.",
        _policy(
            _statement(
                "Allow",
                [
                    "ecr:GetAuthorizationToken",
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:PutImage",
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecs:UpdateService",
                    "ecs:DescribeServices",
                ],
                "*",
            )
        ),
    ),
    "DeveloperBoundary": (
        "Permissions boundary for roles developers create.",
        _policy(
            _statement("Allow", ["s3:*", "dynamodb:*", "logs:*", "cloudwatch:*"], "*"),
            _statement("Deny", ["iam:*", "organizations:*", "account:*"], "*"),
        ),
    ),
}


def seed_roles(account: str) -> list[SeedRole]:
    local = f"arn:aws:iam::{account}:policy/"
    return [
        SeedRole(
            "web-app-ec2",
            service_trust("ec2.amazonaws.com"),
            "Web servers: SSM access and the app data bucket.",
            [_aws("AmazonSSMManagedInstanceCore"), local + "AppDataReadOnly"],
            tags={"team": "web", "env": "prod"},
            instance_profile=True,
        ),
        SeedRole(
            "batch-worker-ec2",
            service_trust("ec2.amazonaws.com"),
            "Nightly batch workers.",
            [_aws("CloudWatchAgentServerPolicy"), _aws("AmazonSSMManagedInstanceCore")],
            tags={"team": "data", "env": "prod"},
            instance_profile=True,
        ),
        SeedRole(
            "reporting-ec2",
            service_trust("ec2.amazonaws.com"),
            "Reporting host; limited by the developer boundary.",
            inline={
                "ReportsBucketWrite": _policy(
                    _statement("Allow", ["s3:PutObject"], "arn:aws:s3:::example-reports/*")
                )
            },
            tags={"team": "finance"},
            boundary=local + "DeveloperBoundary",
            instance_profile=True,
        ),
        SeedRole(
            "orders-lambda",
            service_trust("lambda.amazonaws.com"),
            "Orders API function.",
            [_aws("service-role/AWSLambdaBasicExecutionRole")],
            inline={
                "OrdersTableAccess": _policy(
                    _statement(
                        "Allow",
                        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
                        f"arn:aws:dynamodb:us-east-1:{account}:table/orders",
                    )
                )
            },
            tags={"team": "orders", "env": "prod"},
        ),
        SeedRole(
            "thumbnailer-lambda",
            service_trust("lambda.amazonaws.com"),
            "Makes image thumbnails.",
            [_aws("service-role/AWSLambdaBasicExecutionRole"), _aws("AmazonS3ReadOnlyAccess")],
            tags={"team": "media"},
        ),
        SeedRole(
            "ecs-task-api",
            service_trust("ecs-tasks.amazonaws.com"),
            "Task role of the public API service.",
            [local + "AppDataReadOnly"],
            tags={"team": "web"},
        ),
        SeedRole(
            "glue-etl-service",
            service_trust("glue.amazonaws.com"),
            "Glue crawlers and jobs.",
            [_aws("service-role/AWSGlueServiceRole")],
            path="/service-role/",
        ),
        SeedRole(
            "partner-audit-readonly",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{PARTNER_ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalId": "acme-audit-7731"}},
                    }
                ],
            },
            "Auditor's read-only access from the partner account.",
            [_aws("SecurityAudit")],
            tags={"owner": "security"},
            max_session_hours=4,
        ),
        SeedRole(
            "ops-admin-mfa",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                    }
                ],
            },
            "Break-glass administrator; MFA required.",
            [_aws("AdministratorAccess")],
            tags={"owner": "platform"},
            max_session_hours=1,
        ),
        SeedRole(
            "github-actions-deploy",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {
                            "Federated": f"arn:aws:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}"
                        },
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                                f"{GITHUB_OIDC_HOST}:sub": GITHUB_SUB,
                            }
                        },
                    }
                ],
            },
            "Deploys from GitHub Actions, main branch only.",
            [local + "DeployPipelineAccess"],
            tags={"team": "platform"},
        ),
        SeedRole(
            "corp-saml-developers",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {
                            "Federated": f"arn:aws:iam::{account}:saml-provider/{SAML_PROVIDER}"
                        },
                        "Action": "sts:AssumeRoleWithSAML",
                        "Condition": {
                            "StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}
                        },
                    }
                ],
            },
            "Developers signing in through the corporate IdP.",
            [_aws("ReadOnlyAccess")],
            boundary=local + "DeveloperBoundary",
            tags={"team": "engineering"},
            max_session_hours=8,
        ),
        SeedRole(
            "mobile-app-cognito",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {"cognito-identity.amazonaws.com:aud": COGNITO_POOL},
                            "ForAnyValue:StringLike": {
                                "cognito-identity.amazonaws.com:amr": "authenticated"
                            },
                        },
                    }
                ],
            },
            "Signed-in users of the mobile app.",
            inline={
                "UploadsOwnFolder": _policy(
                    _statement(
                        "Allow",
                        ["s3:PutObject"],
                        "arn:aws:s3:::example-uploads/${cognito-identity.amazonaws.com:sub}/*",
                    )
                )
            },
        ),
        SeedRole(
            "legacy-build-server",
            service_trust("ec2.amazonaws.com"),
            "Old Jenkins host role; nobody remembers who uses it.",
            [_aws("PowerUserAccess")],
            path="/legacy/",
            tags={"owner": "unknown"},
        ),
        # Roles the access review (issue 14) reports, so its page shows each finding on a
        # new sandbox: one unused for months, one with administrator access, and one another
        # company's account may assume without an external ID.
        SeedRole(
            "old-data-migration",
            service_trust("ec2.amazonaws.com"),
            "One-off migration from 2025; never used since it was made.",
            inline={
                "MigrationBucketRead": _policy(
                    _statement(
                        "Allow",
                        ["s3:GetObject", "s3:ListBucket"],
                        ["arn:aws:s3:::example-migration", "arn:aws:s3:::example-migration/*"],
                    )
                )
            },
            tags={"team": "data"},
        ),
        SeedRole(
            "deploy-bot-admin",
            service_trust("codebuild.amazonaws.com"),
            "Build project that deploys everything; given administrator access to get going.",
            [_aws("AdministratorAccess")],
            tags={"team": "platform"},
        ),
        SeedRole(
            "vendor-monitoring",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{VENDOR_ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Monitoring vendor's read-only access; set up without an external ID.",
            [_aws("job-function/ViewOnlyAccess")],
            tags={"vendor": "example-monitoring"},
        ),
    ]


# Roles the access review reports as unused: created this many days ago, never used since.
UNUSED_ROLES = {"old-data-migration": 200, "legacy-build-server": 420}


SAML_METADATA = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
    'entityID="http://www.okta.com/exk1example">'
    '<md:IDPSSODescriptor WantAuthnRequestsSigned="false" '
    'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
    '<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
    "<ds:X509Data><ds:X509Certificate>"
    + "MIIDpDCCAoygAwIBAgIGAXampleCertificateData"
    * 20
    + "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
    'Location="https://example.okta.com/app/amazon_aws/exk1example/sso/saml"/>'
    "</md:IDPSSODescriptor></md:EntityDescriptor>"
)

# Any AMI id will do in the sandbox (moto does not check it); this one looks like Amazon Linux.
SANDBOX_IMAGE_ID = "ami-0c02fb55956c7d316"

# (Name tag, type, role whose instance profile it carries, stopped?)
INSTANCES = [
    ("web-1", "t3.small", "web-app-ec2", False),
    ("web-2", "t3.small", "web-app-ec2", False),
    ("batch-worker-1", "c5.large", "batch-worker-ec2", False),
    ("reporting", "t3.medium", "reporting-ec2", True),
    ("bastion", "t3.micro", None, False),
    ("build-agent-old", "t3.large", None, True),
]


def already_seeded(services: Services) -> bool:
    try:
        services.iam.get_role(MARKER_ROLE)
    except NotFound:
        return False
    return True


def seed(services: Services) -> None:
    """Fill the sandbox once; a sandbox that already holds the example data is left alone."""
    if already_seeded(services):
        return
    ctx = AuditContext(actor=ACTOR)
    iam, run = services.iam, services.audited.call
    account = services.identity.account
    for name, (description, document) in CUSTOMER_POLICIES.items():
        run(
            ctx,
            Change(f"arn:aws:iam::{account}:policy/{name}"),
            iam.create_policy,
            name=name,
            document=document,
            description=description,
        )
    run(
        ctx,
        Change(f"arn:aws:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}"),
        iam.create_oidc_provider,
        url=f"https://{GITHUB_OIDC_HOST}",
        client_ids=["sts.amazonaws.com"],
        thumbprints=["6938fd4d98bab03faadb97b34396831e3780aea1"],
    )
    run(
        ctx,
        Change(
            f"arn:aws:iam::{account}:saml-provider/{SAML_PROVIDER}", params={"Name": SAML_PROVIDER}
        ),
        iam.create_saml_provider,
        name=SAML_PROVIDER,
        metadata=SAML_METADATA,
    )
    for role in seed_roles(account):
        _create_role(services, ctx, role)
    if services.sandbox_endpoint:
        # Roles "in use" get a last-activity date, like in a real account.
        in_use = ("web-app-ec2", "batch-worker-ec2", "orders-lambda", "github-actions-deploy")
        use_roles(services.sandbox_endpoint, [f"arn:aws:iam::{account}:role/{n}" for n in in_use])
        # Only time makes a role old; the sandbox's one is dated back (sandbox only).
        for name, days in UNUSED_ROLES.items():
            set_role_dates(account, name, created=datetime.now(UTC) - timedelta(days=days))
    _run_instances(services, ctx, services.ec2(), INSTANCES, None)


def _run_instances(
    services: Services,
    ctx: AuditContext,
    ec2: Ec2Gateway,
    instances: list[tuple[str, str, str | None, bool]],
    account: str | None,
) -> None:
    run = services.audited.call
    for name, instance_type, role_name, stopped in instances:
        instance = run(
            ctx,
            Change(name, account_id=account),
            ec2.run_instance,
            name=name,
            image_id=SANDBOX_IMAGE_ID,
            instance_type=instance_type,
            profile_name=role_name,
        )
        if stopped:
            run(
                ctx,
                Change(instance.instance_id, account_id=account),
                ec2.stop_instance,
                instance.instance_id,
            )


def _create_role(
    services: Services,
    ctx: AuditContext,
    role: SeedRole,
    iam: IamGateway | None = None,
    account: str | None = None,
) -> None:
    """Create a seed role in the hub account, or with `iam` in member `account`."""
    run = services.audited.call
    in_account = account or services.identity.account
    iam = iam or services.iam
    arn = f"arn:aws:iam::{in_account}:role{role.path}{role.name}"
    target = Change(arn, account_id=account)
    run(
        ctx,
        target,
        iam.create_role,
        name=role.name,
        trust_policy=role.trust,
        path=role.path,
        description=role.description,
        max_session_duration=role.max_session_hours * 3600,
        permissions_boundary_arn=role.boundary,
        tags=tuple(Tag(k, v) for k, v in role.tags.items()),
    )
    for policy_arn in role.managed:
        run(ctx, target, iam.attach_role_policy, role_name=role.name, policy_arn=policy_arn)
    for policy_name, document in role.inline.items():
        run(
            ctx,
            target,
            iam.put_role_policy,
            role_name=role.name,
            policy_name=policy_name,
            document=document,
        )
    if role.instance_profile:
        profile_arn = f"arn:aws:iam::{in_account}:instance-profile/{role.name}"
        profile = Change(profile_arn, account_id=account)
        run(ctx, profile, iam.create_instance_profile, name=role.name)
        run(
            ctx,
            profile,
            iam.add_role_to_instance_profile,
            profile_name=role.name,
            role_name=role.name,
        )


# The sandbox organization (issue 17) --------------------------------------------------------
# The default account is the management account (RoleDesk's hub); its seed above is left
# exactly as it was. Each member gets the spoke role, as a StackSet would deploy it, made
# with the OrganizationAccountAccessRole that CreateAccount leaves there, and then its own
# roles and instances, made by RoleDesk through the spoke role like any member-account change.

SETUP_ROLE = "OrganizationAccountAccessRole"

# (account name, short name used in role and instance names)
MEMBER_ACCOUNTS = [("Development", "dev"), ("Staging", "staging"), ("Production", "prod")]


def member_roles(short: str, hub_account: str) -> list[SeedRole]:
    hub_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{hub_account}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    return [
        SeedRole(
            f"{short}-app-ec2",
            service_trust("ec2.amazonaws.com"),
            f"Application servers in {short}.",
            [_aws("AmazonSSMManagedInstanceCore")],
            tags={"env": short},
            instance_profile=True,
        ),
        SeedRole(
            f"{short}-deploy",
            hub_trust,
            f"The hub account's pipeline deploys to {short} with this role.",
            [_aws("PowerUserAccess")],
            tags={"env": short, "team": "platform"},
        ),
        SeedRole(
            "ReadOnlyAuditor",
            hub_trust,
            "Auditors from the hub account read everything.",
            [_aws("ReadOnlyAccess")],
            tags={"team": "security"},
        ),
    ]


def member_instances(short: str) -> list[tuple[str, str, str | None, bool]]:
    return [
        (f"{short}-app-1", "t3.small", f"{short}-app-ec2", False),
        (f"{short}-worker", "t3.micro", None, True),
    ]


def seed_organization(services: Services) -> list[str]:
    """Make the sandbox an organization with three seeded member accounts; returns their
    ids. A sandbox that is already an organization is left alone (returns [])."""
    organizations = OrganizationsGateway(services.clients)
    try:
        organizations.describe()
    except AwsError:
        pass  # not an organization yet
    else:
        return []
    ctx = AuditContext(actor=ACTOR)
    run = services.audited.call
    hub_id = services.identity.account
    org = run(ctx, Change(None), organizations.create_organization)
    hub = AccountHub(services.settings, services.clients, hub_id)
    created: list[str] = []
    for name, short in MEMBER_ACCOUNTS:
        account_id = run(
            ctx,
            Change(name, params={"name": name, "email": f"{short}@example.com"}),
            organizations.create_account,
            name=name,
            email=f"{short}@example.com",
        )
        _spoke_role(services, ctx, account_id, org.org_id)
        account = Account(account_id, name, services.settings.member_role_name, ORGANIZATIONS)
        iam = hub.iam(account, ACTOR)
        for role in member_roles(short, hub_id):
            _create_role(services, ctx, role, iam, account_id)
        _run_instances(services, ctx, hub.ec2(account, ACTOR), member_instances(short), account_id)
        created.append(account_id)
    return created


def _spoke_role(services: Services, ctx: AuditContext, account_id: str, org_id: str) -> None:
    """The spoke role in a new member account, trusting RoleDesk's identity."""
    credentials = StsGateway(services.clients).assume_role(
        f"arn:aws:iam::{account_id}:role/{SETUP_ROLE}", "sandbox-seed"
    )
    iam = IamGateway(services.clients.for_role(lambda: credentials))
    name = services.settings.member_role_name
    target = Change(f"arn:aws:iam::{account_id}:role/{name}", account_id=account_id)
    trust = spoke_trust(hub_principal(services.identity.arn), org_id)
    run = services.audited.call
    run(ctx, target, iam.create_role, name=name, trust_policy=trust, description="RoleDesk hub")
    run(
        ctx,
        target,
        iam.put_role_policy,
        role_name=name,
        policy_name=SPOKE_POLICY_NAME,
        document=spoke_policy(),
    )
