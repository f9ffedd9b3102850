"""Which accounts RoleDesk manages: the organization's (ListAccounts, every page) when the
hub may read it, otherwise those named in configuration (ROLEDESK_ACCOUNTS).

The hub account, RoleDesk's own, is always first and is reached with RoleDesk's own
credentials; every other account through its spoke role.
"""

from __future__ import annotations

from app.accounts.model import CONFIGURATION, HUB, ORGANIZATIONS, Account, AccountList
from app.aws.clients import AwsClients
from app.aws.errors import AwsError
from app.aws.organizations import OrganizationsGateway
from app.aws.sts import StsGateway
from app.settings import AccountsSource, Settings


def hub_account(account_id: str, name: str = "") -> Account:
    return Account(account_id, name or "RoleDesk's own account", "", HUB, is_hub=True)


def from_configuration(settings: Settings, hub_id: str) -> list[Account]:
    return [
        Account(a.id, a.name, a.role or settings.member_role_name, CONFIGURATION)
        for a in settings.accounts
        if a.id != hub_id
    ]


def from_organizations(
    organizations: OrganizationsGateway, settings: Settings, hub_id: str
) -> tuple[str, list[Account]]:
    """(hub's name in the organization, the other ACTIVE accounts). Suspended accounts and
    accounts being closed cannot be reached, so they are left out."""
    listed = organizations.list_accounts()
    hub_name = next((a.name for a in listed if a.account_id == hub_id), "")
    members = [
        Account(a.account_id, a.name, settings.member_role_name, ORGANIZATIONS)
        for a in listed
        if a.status == "ACTIVE" and a.account_id != hub_id
    ]
    return hub_name, sorted(members, key=lambda a: (a.name.lower(), a.account_id))


def load_accounts(
    settings: Settings, organizations: OrganizationsGateway, hub_id: str
) -> AccountList:
    """The accounts to manage. With source `organizations` an Organizations error is
    raised; with `auto` (not in an organization, not allowed to read it, not reachable) it
    is kept to show, and the configured accounts are used."""
    source = settings.accounts_source
    if source is not AccountsSource.CONFIGURATION:
        try:
            hub_name, members = from_organizations(organizations, settings, hub_id)
        except AwsError as exc:
            if source is AccountsSource.ORGANIZATIONS:
                raise
            return AccountList(
                (hub_account(hub_id), *from_configuration(settings, hub_id)), CONFIGURATION, exc
            )
        return AccountList((hub_account(hub_id, hub_name), *members), ORGANIZATIONS)
    return AccountList((hub_account(hub_id), *from_configuration(settings, hub_id)), CONFIGURATION)


class RegistryUnreadable(Exception):
    """The account list cannot be read from this process (the shell, without a server)."""


def read_accounts(settings: Settings) -> AccountList:
    """The accounts as a RoleDesk server with `settings` lists them, read from this process
    (`roledesk users limit` checks ids against it). Calls sts:GetCallerIdentity (the hub's
    id) and, unless the source is `configuration`, organizations:ListAccounts. Raises
    RegistryUnreadable in sandbox mode without ROLEDESK_AWS_ENDPOINT_URL (the sandbox lives
    in the server's process) and AwsError when AWS cannot be read."""
    if settings.is_sandbox and not settings.aws_endpoint_url:
        raise RegistryUnreadable(
            "In sandbox mode the accounts live in the running RoleDesk's sandbox: set "
            "ROLEDESK_AWS_ENDPOINT_URL to the endpoint it printed at start (AWS sandbox (moto) "
            "at ...), or limit the user on the Users page."
        )
    clients = AwsClients(
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        profile=None if settings.is_sandbox else settings.aws_profile,
        sandbox=settings.is_sandbox,
    )
    hub_id = StsGateway(clients).caller_identity().account
    return load_accounts(settings, OrganizationsGateway(clients), hub_id)
