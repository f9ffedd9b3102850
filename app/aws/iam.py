"""IAM calls RoleDesk makes. Read calls use paginators; change calls run only inside the
audited path (see `app.aws.calls`). Errors are raised as `app.aws.errors` types.

API reference: https://docs.aws.amazon.com/IAM/latest/APIReference/
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from app.aws.calls import changes, reads
from app.aws.clients import AwsClients
from app.aws.translate import aws_errors
from app.aws.types import (
    AccountSummary,
    AttachedPolicy,
    AuthorizationPage,
    InlinePolicy,
    InstanceProfile,
    ManagedDocument,
    ManagedPolicy,
    OidcProvider,
    Role,
    RoleDetail,
    RoleLastUsed,
    SamlProvider,
    ServiceAccess,
    ServiceAccessReport,
    Tag,
    parse_policy_document,
)


def _tags(raw: list[dict[str, str]] | None) -> tuple[Tag, ...]:
    return tuple(Tag(t["Key"], t.get("Value", "")) for t in raw or [])


def role_from_api(raw: dict[str, Any]) -> Role:
    last_used = raw.get("RoleLastUsed")
    return Role(
        name=raw["RoleName"],
        role_id=raw["RoleId"],
        arn=raw["Arn"],
        path=raw.get("Path", "/"),
        created=raw["CreateDate"],
        trust_policy=parse_policy_document(raw.get("AssumeRolePolicyDocument", "")),
        description=raw.get("Description") or "",
        max_session_duration=int(raw.get("MaxSessionDuration") or 3600),
        permissions_boundary_arn=(raw.get("PermissionsBoundary") or {}).get(
            "PermissionsBoundaryArn"
        ),
        tags=_tags(raw.get("Tags")),
        last_used=(
            RoleLastUsed(last_used.get("LastUsedDate"), last_used.get("Region"))
            if last_used is not None
            else None
        ),
    )


def _profile(raw: dict[str, Any]) -> InstanceProfile:
    return InstanceProfile(
        name=raw["InstanceProfileName"],
        arn=raw["Arn"],
        profile_id=raw["InstanceProfileId"],
        path=raw.get("Path", "/"),
        role_names=tuple(r["RoleName"] for r in raw.get("Roles", [])),
        created=raw.get("CreateDate"),
    )


def _policy(raw: dict[str, Any]) -> ManagedPolicy:
    arn: str = raw["Arn"]
    return ManagedPolicy(
        name=raw["PolicyName"],
        arn=arn,
        path=raw.get("Path", "/"),
        default_version_id=raw.get("DefaultVersionId", "v1"),
        attachment_count=int(raw.get("AttachmentCount") or 0),
        is_aws_managed=arn.startswith("arn:aws:iam::aws:policy/"),
        description=raw.get("Description") or "",
        created=raw.get("CreateDate"),
        updated=raw.get("UpdateDate"),
        policy_id=raw.get("PolicyId") or "",
    )


def _role_detail(raw: dict[str, Any]) -> RoleDetail:
    return RoleDetail(
        role=role_from_api(raw),
        attached=tuple(
            AttachedPolicy(p["PolicyName"], p["PolicyArn"])
            for p in raw.get("AttachedManagedPolicies", [])
        ),
        inline=tuple(
            InlinePolicy(p["PolicyName"], parse_policy_document(p.get("PolicyDocument", "")))
            for p in raw.get("RolePolicyList", [])
        ),
    )


def _default_document(raw: dict[str, Any]) -> ManagedDocument | None:
    for version in raw.get("PolicyVersionList", []):
        if version.get("IsDefaultVersion"):
            return ManagedDocument(
                arn=raw["Arn"],
                # moto leaves PolicyName out of this call; the ARN ends with the name.
                name=raw.get("PolicyName") or raw["Arn"].rsplit("/", 1)[-1],
                version_id=version.get("VersionId", ""),
                document=parse_policy_document(version.get("Document", "")),
            )
    return None


def _service_access(raw: dict[str, Any]) -> ServiceAccess:
    return ServiceAccess(
        namespace=raw["ServiceNamespace"],
        name=raw.get("ServiceName") or raw["ServiceNamespace"],
        last_authenticated=raw.get("LastAuthenticated"),
        last_region=raw.get("LastAuthenticatedRegion"),
        last_entity=raw.get("LastAuthenticatedEntity"),
    )


def _json(document: dict[str, Any] | str) -> str:
    return document if isinstance(document, str) else json.dumps(document)


class IamGateway:
    """IAM for one account connection."""

    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @property
    def _iam(self) -> Any:
        return self._clients.client("iam")

    def _pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
        with aws_errors():
            for page in self._iam.get_paginator(operation).paginate(**kwargs):
                yield from page.get(key, [])

    # Roles -------------------------------------------------------------------------------

    @reads("iam:ListRoles")
    def list_roles(self, page_size: int = 1000) -> Iterator[Role]:
        """Every role in the account (all pages). ListRoles omits last use, tags, boundary."""
        for raw in self._pages("list_roles", "Roles", PaginationConfig={"PageSize": page_size}):
            yield role_from_api(raw)

    @reads("iam:GetRole")
    def get_role(self, name: str) -> Role:
        """Raises NotFound for an unknown role."""
        with aws_errors():
            return role_from_api(self._iam.get_role(RoleName=name)["Role"])

    @reads("iam:ListAttachedRolePolicies")
    def list_attached_role_policies(self, role_name: str) -> list[AttachedPolicy]:
        return [
            AttachedPolicy(p["PolicyName"], p["PolicyArn"])
            for p in self._pages(
                "list_attached_role_policies", "AttachedPolicies", RoleName=role_name
            )
        ]

    @reads("iam:ListRolePolicies")
    def list_role_policy_names(self, role_name: str) -> list[str]:
        return [
            str(name)
            for name in self._pages("list_role_policies", "PolicyNames", RoleName=role_name)
        ]

    @reads("iam:GetRolePolicy")
    def get_role_policy(self, role_name: str, policy_name: str) -> InlinePolicy:
        with aws_errors():
            raw = self._iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)
        return InlinePolicy(policy_name, parse_policy_document(raw["PolicyDocument"]))

    @reads("iam:ListInstanceProfilesForRole")
    def list_instance_profiles_for_role(self, role_name: str) -> list[InstanceProfile]:
        return [
            _profile(p)
            for p in self._pages(
                "list_instance_profiles_for_role", "InstanceProfiles", RoleName=role_name
            )
        ]

    @changes("iam:CreateRole")
    def create_role(
        self,
        *,
        name: str,
        trust_policy: dict[str, Any] | str,
        path: str = "/",
        description: str = "",
        max_session_duration: int = 3600,
        permissions_boundary_arn: str | None = None,
        tags: tuple[Tag, ...] = (),
    ) -> Role:
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": _json(trust_policy),
            "Path": path,
            "MaxSessionDuration": max_session_duration,
        }
        if description:
            kwargs["Description"] = description
        if permissions_boundary_arn:
            kwargs["PermissionsBoundary"] = permissions_boundary_arn
        if tags:
            kwargs["Tags"] = [{"Key": t.key, "Value": t.value} for t in tags]
        with aws_errors():
            return role_from_api(self._iam.create_role(**kwargs)["Role"])

    @changes("iam:DeleteRole")
    def delete_role(self, name: str) -> None:
        with aws_errors():
            self._iam.delete_role(RoleName=name)

    @changes("iam:UpdateAssumeRolePolicy")
    def update_trust_policy(self, role_name: str, document: dict[str, Any] | str) -> None:
        with aws_errors():
            self._iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=_json(document))

    @changes("iam:UpdateRole")
    def update_role(self, role_name: str, description: str, max_session_duration: int) -> None:
        with aws_errors():
            self._iam.update_role(
                RoleName=role_name,
                Description=description,
                MaxSessionDuration=max_session_duration,
            )

    @changes("iam:PutRolePermissionsBoundary")
    def put_role_boundary(self, role_name: str, policy_arn: str) -> None:
        with aws_errors():
            self._iam.put_role_permissions_boundary(
                RoleName=role_name, PermissionsBoundary=policy_arn
            )

    @changes("iam:DeleteRolePermissionsBoundary")
    def delete_role_boundary(self, role_name: str) -> None:
        with aws_errors():
            self._iam.delete_role_permissions_boundary(RoleName=role_name)

    @changes("iam:TagRole")
    def tag_role(self, role_name: str, tags: tuple[Tag, ...]) -> None:
        with aws_errors():
            self._iam.tag_role(
                RoleName=role_name, Tags=[{"Key": t.key, "Value": t.value} for t in tags]
            )

    @changes("iam:UntagRole")
    def untag_role(self, role_name: str, keys: tuple[str, ...]) -> None:
        with aws_errors():
            self._iam.untag_role(RoleName=role_name, TagKeys=list(keys))

    @changes("iam:AttachRolePolicy")
    def attach_role_policy(self, role_name: str, policy_arn: str) -> None:
        with aws_errors():
            self._iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)

    @changes("iam:DetachRolePolicy")
    def detach_role_policy(self, role_name: str, policy_arn: str) -> None:
        with aws_errors():
            self._iam.detach_role_policy(RoleName=role_name, PolicyArn=policy_arn)

    @changes("iam:PutRolePolicy")
    def put_role_policy(
        self, role_name: str, policy_name: str, document: dict[str, Any] | str
    ) -> None:
        with aws_errors():
            self._iam.put_role_policy(
                RoleName=role_name, PolicyName=policy_name, PolicyDocument=_json(document)
            )

    @changes("iam:DeleteRolePolicy")
    def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        with aws_errors():
            self._iam.delete_role_policy(RoleName=role_name, PolicyName=policy_name)

    # Instance profiles --------------------------------------------------------------------

    @reads("iam:GetInstanceProfile")
    def get_instance_profile(self, name: str) -> InstanceProfile:
        with aws_errors():
            return _profile(
                self._iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
            )

    @reads("iam:ListInstanceProfiles")
    def list_instance_profiles(self) -> list[InstanceProfile]:
        return [_profile(p) for p in self._pages("list_instance_profiles", "InstanceProfiles")]

    @changes("iam:CreateInstanceProfile")
    def create_instance_profile(self, name: str, path: str = "/") -> InstanceProfile:
        with aws_errors():
            raw = self._iam.create_instance_profile(InstanceProfileName=name, Path=path)
        return _profile(raw["InstanceProfile"])

    @changes("iam:AddRoleToInstanceProfile", "iam:PassRole")
    def add_role_to_instance_profile(self, profile_name: str, role_name: str) -> None:
        with aws_errors():
            self._iam.add_role_to_instance_profile(
                InstanceProfileName=profile_name, RoleName=role_name
            )

    @changes("iam:RemoveRoleFromInstanceProfile")
    def remove_role_from_instance_profile(self, profile_name: str, role_name: str) -> None:
        with aws_errors():
            self._iam.remove_role_from_instance_profile(
                InstanceProfileName=profile_name, RoleName=role_name
            )

    @changes("iam:DeleteInstanceProfile")
    def delete_instance_profile(self, name: str) -> None:
        with aws_errors():
            self._iam.delete_instance_profile(InstanceProfileName=name)

    @reads("iam:GetAccountAuthorizationDetails")
    def authorization_pages(self, page_size: int = 1000) -> Iterator[AuthorizationPage]:
        """Every role with its trust policy, attached and inline policies, boundary, tags
        and last use, and every customer managed policy's default document, a page at a
        time (the account scan). AWS managed policies are left out: AWS returns all of them
        (about 1,300 documents) and a role holds a few, read with `get_policy` instead."""
        with aws_errors():
            paginator = self._iam.get_paginator("get_account_authorization_details")
            for page in paginator.paginate(
                Filter=["Role", "LocalManagedPolicy"], PaginationConfig={"PageSize": page_size}
            ):
                yield AuthorizationPage(
                    tuple(_role_detail(r) for r in page.get("RoleDetailList", [])),
                    tuple(d for p in page.get("Policies", []) if (d := _default_document(p))),
                )

    # Access Advisor (service last accessed) -------------------------------------------------
    # Starting a report changes nothing in the account (AWS builds it from its own records), so
    # it is declared as a read, like the look-ups it serves.

    @reads("iam:GenerateServiceLastAccessedDetails")
    def start_service_last_accessed(self, arn: str) -> str:
        """Start the report of which services `arn` used and when; returns its job id."""
        with aws_errors():
            raw = self._iam.generate_service_last_accessed_details(
                Arn=arn, Granularity="SERVICE_LEVEL"
            )
        return str(raw["JobId"])

    @reads("iam:GetServiceLastAccessedDetails")
    def service_last_accessed(self, job_id: str) -> ServiceAccessReport:
        """The report's state; once COMPLETED, every service (all pages, by Marker: botocore
        has no paginator for this call)."""
        services: list[ServiceAccess] = []
        kwargs: dict[str, Any] = {"JobId": job_id, "MaxItems": 1000}
        with aws_errors():
            while True:
                raw = self._iam.get_service_last_accessed_details(**kwargs)
                services += (_service_access(s) for s in raw.get("ServicesLastAccessed", []))
                if not raw.get("IsTruncated") or not raw.get("Marker"):
                    break
                kwargs["Marker"] = raw["Marker"]
        return ServiceAccessReport(
            status=str(raw.get("JobStatus", "")),
            job_created=raw.get("JobCreationDate"),
            job_completed=raw.get("JobCompletionDate"),
            services=tuple(services),
            error=str((raw.get("Error") or {}).get("Message") or ""),
        )

    # Managed policies ---------------------------------------------------------------------

    @reads("iam:ListPolicies")
    def list_policies(self, scope: str = "All") -> Iterator[ManagedPolicy]:
        """scope: All, AWS or Local (customer managed)."""
        for raw in self._pages("list_policies", "Policies", Scope=scope):
            yield _policy(raw)

    @reads("iam:GetPolicy")
    def get_policy(self, arn: str) -> ManagedPolicy:
        with aws_errors():
            return _policy(self._iam.get_policy(PolicyArn=arn)["Policy"])

    @reads("iam:GetPolicyVersion")
    def get_policy_document(self, arn: str, version_id: str) -> dict[str, Any] | str:
        with aws_errors():
            raw = self._iam.get_policy_version(PolicyArn=arn, VersionId=version_id)
        return parse_policy_document(raw["PolicyVersion"]["Document"])

    @changes("iam:CreatePolicy")
    def create_policy(
        self, name: str, document: dict[str, Any] | str, description: str = "", path: str = "/"
    ) -> ManagedPolicy:
        kwargs: dict[str, Any] = {"PolicyName": name, "PolicyDocument": _json(document)}
        if description:
            kwargs["Description"] = description
        kwargs["Path"] = path
        with aws_errors():
            return _policy(self._iam.create_policy(**kwargs)["Policy"])

    @changes("iam:DeletePolicy")
    def delete_policy(self, arn: str) -> None:
        """AWS refuses while the policy is attached or has versions besides the default."""
        with aws_errors():
            self._iam.delete_policy(PolicyArn=arn)

    # Account and identity providers -------------------------------------------------------

    @reads("iam:GetAccountSummary")
    def get_account_summary(self) -> AccountSummary:
        with aws_errors():
            raw = self._iam.get_account_summary()["SummaryMap"]
        return AccountSummary({str(k): int(v) for k, v in raw.items()})

    @reads("iam:ListOpenIDConnectProviders")
    def list_oidc_providers(self) -> list[OidcProvider]:
        with aws_errors():
            raw = self._iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        return [OidcProvider(p["Arn"]) for p in raw]

    @changes("iam:CreateOpenIDConnectProvider")
    def create_oidc_provider(
        self, url: str, client_ids: list[str], thumbprints: list[str]
    ) -> OidcProvider:
        with aws_errors():
            raw = self._iam.create_open_id_connect_provider(
                Url=url, ClientIDList=client_ids, ThumbprintList=thumbprints
            )
        return OidcProvider(raw["OpenIDConnectProviderArn"])

    @reads("iam:ListSAMLProviders")
    def list_saml_providers(self) -> list[SamlProvider]:
        with aws_errors():
            raw = self._iam.list_saml_providers()["SAMLProviderList"]
        return [SamlProvider(p["Arn"], p.get("CreateDate"), p.get("ValidUntil")) for p in raw]

    @changes("iam:CreateSAMLProvider")
    def create_saml_provider(self, name: str, metadata: str) -> SamlProvider:
        with aws_errors():
            raw = self._iam.create_saml_provider(Name=name, SAMLMetadataDocument=metadata)
        return SamlProvider(raw["SAMLProviderArn"])
