"""Clients and gateways for any account: the hub's own, or a member's through its spoke role.

Each (account, RoleDesk user) gets its own assumed-role session, named after the user, so
the member account's CloudTrail shows who acted; its credentials come from the shared
CredentialCache. The clients are children of the hub's (app.aws.clients), so a hook on the
hub's clients (call counting, the benchmarks' latency model) sees the member accounts' calls.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from app.accounts.credentials import Clock, CredentialCache, utc_now
from app.accounts.model import Account, AccountList, AccountStatus
from app.accounts.registry import load_accounts
from app.accounts.session_name import session_name
from app.aws.clients import AwsClients
from app.aws.ec2 import Ec2Gateway
from app.aws.errors import AwsError
from app.aws.iam import IamGateway
from app.aws.organizations import OrganizationsGateway
from app.aws.sts import StsGateway, TemporaryCredentials
from app.settings import Settings

# Accounts checked side by side: enough for an organization's worth of AssumeRole calls
# without opening more connections than the clients' pool holds.
CHECK_WORKERS = 8


class AccountHub:
    def __init__(
        self, settings: Settings, hub_clients: AwsClients, hub_id: str, *, clock: Clock = utc_now
    ) -> None:
        self.settings = settings
        self.hub_clients = hub_clients
        self.hub_id = hub_id
        self._sts = StsGateway(hub_clients)
        self.credentials = CredentialCache(
            self._assume,
            refresh_before=timedelta(seconds=settings.credential_refresh_seconds),
            clock=clock,
        )
        self._clients: dict[tuple[str, str], AwsClients] = {}
        self._lock = threading.Lock()

    def _assume(self, role_arn: str, name: str) -> TemporaryCredentials:
        return self._sts.assume_role(role_arn, name, self.settings.member_session_seconds)

    # The accounts ------------------------------------------------------------------------

    def accounts(self) -> AccountList:
        """Read from Organizations (or configuration) each time: a new account shows at once."""
        return load_accounts(self.settings, OrganizationsGateway(self.hub_clients), self.hub_id)

    def organization_id(self) -> str | None:
        """The organization's id, or None outside one (or when the hub may not read it)."""
        try:
            return OrganizationsGateway(self.hub_clients).describe().org_id
        except AwsError:
            return None

    # Clients per account -----------------------------------------------------------------

    def clients(self, account: Account, user: str) -> AwsClients:
        """Clients acting in `account` for RoleDesk user `user`. For a member account the
        first call through them assumes the spoke role (an AwsError if it cannot)."""
        if account.account_id == self.hub_id:
            return self.hub_clients
        name = session_name(user)
        key = (account.role_arn, name)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                cache, arn = self.credentials, account.role_arn
                found = self.hub_clients.for_role(lambda: cache.get(arn, name))
                self._clients[key] = found
            return found

    def iam(self, account: Account, user: str) -> IamGateway:
        return IamGateway(self.clients(account, user))

    def ec2(self, account: Account, user: str, region: str | None = None) -> Ec2Gateway:
        return Ec2Gateway(self.clients(account, user), region or self.settings.aws_region)

    # Reachability ------------------------------------------------------------------------

    def status(self, account: Account, user: str) -> AccountStatus:
        """Whether RoleDesk can act in `account` now: its spoke role can be assumed."""
        if account.account_id == self.hub_id:
            return AccountStatus(account)
        try:
            self.credentials.get(account.role_arn, session_name(user))
        except AwsError as exc:
            return AccountStatus(account, exc)
        return AccountStatus(account)

    def statuses(self, accounts: AccountList, user: str) -> list[AccountStatus]:
        """Every account's status, checked side by side; one failing account (AWS's error
        kept, with its request id) never hides the others."""
        with ThreadPoolExecutor(CHECK_WORKERS) as pool:
            return list(pool.map(lambda a: self.status(a, user), accounts.accounts))
