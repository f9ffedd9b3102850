"""The accounts RoleDesk knows, and whether it can reach them right now."""

from __future__ import annotations

from dataclasses import dataclass

from app.aws.errors import AwsError

ORGANIZATIONS = "organizations"
CONFIGURATION = "configuration"
HUB = "hub"


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    role_name: str  # the spoke role assumed there; unused for the hub account itself
    source: str  # organizations, configuration, or hub (RoleDesk's own account)
    is_hub: bool = False

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:role/{self.role_name}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.account_id})" if self.name else self.account_id


@dataclass(frozen=True)
class AccountList:
    accounts: tuple[Account, ...]
    source: str
    # Why Organizations was not used when the source was `auto` (AWS's code and request id).
    organizations_problem: AwsError | None = None

    def find(self, account_id: str) -> Account | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)


@dataclass(frozen=True)
class AccountStatus:
    account: Account
    error: AwsError | None = None  # why RoleDesk cannot reach it (None: it can)

    @property
    def available(self) -> bool:
        return self.error is None
