"""AWS Organizations: the member accounts RoleDesk may reach, read with the hub's credentials.

API reference: https://docs.aws.amazon.com/organizations/latest/APIReference/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.aws.calls import hub_reads, sandbox_changes
from app.aws.clients import AwsClients
from app.aws.translate import aws_errors


@dataclass(frozen=True)
class OrganizationAccount:
    account_id: str
    name: str
    email: str
    status: str  # ACTIVE, SUSPENDED, PENDING_CLOSURE


@dataclass(frozen=True)
class Organization:
    org_id: str
    management_account_id: str


class OrganizationsGateway:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @property
    def _org(self) -> Any:
        return self._clients.client("organizations")

    @hub_reads("organizations:ListAccounts")
    def list_accounts(self, page_size: int = 20) -> list[OrganizationAccount]:
        """Every account of the organization (all pages; AWS gives at most 20 a page).
        Raises AccessDenied when the hub may not read it, and AwsError
        `AWSOrganizationsNotInUseException` outside an organization."""
        found: list[OrganizationAccount] = []
        pages = self._org.get_paginator("list_accounts").paginate(
            PaginationConfig={"PageSize": page_size}
        )
        with aws_errors():
            for page in pages:
                found += [
                    OrganizationAccount(a["Id"], a.get("Name", ""), a.get("Email", ""), a["Status"])
                    for a in page.get("Accounts", [])
                ]
        return found

    @hub_reads("organizations:DescribeOrganization")
    def describe(self) -> Organization:
        """The organization's id (for `aws:PrincipalOrgID` conditions)."""
        with aws_errors():
            raw = self._org.describe_organization()["Organization"]
        return Organization(raw["Id"], raw["MasterAccountId"])

    @sandbox_changes("organizations:CreateOrganization")
    def create_organization(self) -> Organization:
        with aws_errors():
            raw = self._org.create_organization(FeatureSet="ALL")["Organization"]
        return Organization(raw["Id"], raw["MasterAccountId"])

    @sandbox_changes("organizations:CreateAccount")
    def create_account(self, name: str, email: str) -> str:
        """The new account's id. moto finishes at once; AWS answers IN_PROGRESS and would
        need DescribeCreateAccountStatus polling (never done outside the sandbox)."""
        with aws_errors():
            status = self._org.create_account(AccountName=name, Email=email)["CreateAccountStatus"]
        return str(status["AccountId"])
