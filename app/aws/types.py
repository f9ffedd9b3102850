"""What the AWS boundary returns: frozen dataclasses, never boto dicts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

PolicyDocument = dict[str, Any]


def parse_policy_document(raw: object) -> PolicyDocument | str:
    """boto3 decodes policy documents to dicts, but leaves a str when the JSON is invalid
    (moto stores whatever it is given) and some APIs return it URL-encoded."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        for candidate in (raw, unquote(raw)):
            try:
                parsed = json.loads(candidate)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed
        return raw
    return str(raw)


@dataclass(frozen=True)
class Tag:
    key: str
    value: str


@dataclass(frozen=True)
class RoleLastUsed:
    last_used: datetime | None
    region: str | None


@dataclass(frozen=True)
class Role:
    """A role as ListRoles or GetRole describes it. ListRoles leaves `last_used`,
    `permissions_boundary_arn` and `tags` empty; GetRole fills them."""

    name: str
    role_id: str
    arn: str
    path: str
    created: datetime
    trust_policy: PolicyDocument | str
    description: str = ""
    max_session_duration: int = 3600
    permissions_boundary_arn: str | None = None
    tags: tuple[Tag, ...] = ()
    last_used: RoleLastUsed | None = None


@dataclass(frozen=True)
class AttachedPolicy:
    name: str
    arn: str


@dataclass(frozen=True)
class InlinePolicy:
    name: str
    document: PolicyDocument | str


@dataclass(frozen=True)
class InstanceProfile:
    name: str
    arn: str
    profile_id: str
    path: str
    role_names: tuple[str, ...] = ()
    created: datetime | None = None


@dataclass(frozen=True)
class ManagedPolicy:
    name: str
    arn: str
    path: str
    default_version_id: str
    attachment_count: int
    is_aws_managed: bool
    description: str = ""
    created: datetime | None = None
    updated: datetime | None = None
    # AWS's id for this policy: a policy deleted and made again under the same name (so the
    # same ARN and, often, the same version id "v1") has a new one.
    policy_id: str = ""

    @property
    def is_job_function(self) -> bool:
        return self.is_aws_managed and self.path == "/job-function/"


@dataclass(frozen=True)
class AccountSummary:
    values: dict[str, int] = field(default_factory=dict)

    def get(self, key: str, default: int) -> int:
        return self.values.get(key, default)


@dataclass(frozen=True)
class OidcProvider:
    arn: str

    @property
    def url(self) -> str:
        """The provider's host/path, as it appears in condition keys."""
        return self.arn.split(":oidc-provider/", 1)[-1]


@dataclass(frozen=True)
class SamlProvider:
    arn: str
    created: datetime | None = None
    valid_until: datetime | None = None

    @property
    def name(self) -> str:
        return self.arn.split(":saml-provider/", 1)[-1]


@dataclass(frozen=True)
class CallerIdentity:
    account: str
    arn: str
    user_id: str


@dataclass(frozen=True)
class Instance:
    instance_id: str
    name: str
    state: str
    instance_type: str
    availability_zone: str
    launched: datetime | None = None
    profile_arn: str | None = None


@dataclass(frozen=True)
class ProfileAssociation:
    association_id: str
    instance_id: str
    profile_arn: str
    state: str

    @property
    def profile_name(self) -> str:
        return self.profile_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class TrailEvent:
    """One CloudTrail management event (from LookupEvents)."""

    event_id: str
    name: str
    time: datetime | None
    source: str
    username: str
    read_only: bool
    source_ip: str | None = None
    error_code: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class RoleDetail:
    """A role as GetAccountAuthorizationDetails describes it: the role (with last use, tags
    and boundary), its attached managed policies and its inline policies' documents."""

    role: Role
    attached: tuple[AttachedPolicy, ...]
    inline: tuple[InlinePolicy, ...]


@dataclass(frozen=True)
class ManagedDocument:
    """A customer managed policy's default version, from GetAccountAuthorizationDetails."""

    arn: str
    name: str
    version_id: str
    document: PolicyDocument | str


@dataclass(frozen=True)
class AuthorizationPage:
    """One page of GetAccountAuthorizationDetails (roles and customer managed policies)."""

    roles: tuple[RoleDetail, ...]
    policies: tuple[ManagedDocument, ...]


@dataclass(frozen=True)
class ServiceAccess:
    """One service a role's policies allow, and when the role last used it (IAM Access
    Advisor); `last_authenticated` is None when not used in IAM's tracking period."""

    namespace: str
    name: str
    last_authenticated: datetime | None
    last_region: str | None
    last_entity: str | None


@dataclass(frozen=True)
class ServiceAccessReport:
    """GetServiceLastAccessedDetails' answer: IN_PROGRESS, COMPLETED or FAILED."""

    status: str
    job_created: datetime | None
    job_completed: datetime | None
    services: tuple[ServiceAccess, ...]
    error: str = ""
