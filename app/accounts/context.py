"""The account a request works in, and the objects the routes use for it.

Pages for a member account live under `/accounts/<12-digit id>/...` (app.accounts.urls);
without the prefix, or with the hub's own id, a request works in the hub account with
today's objects. For a member account RoleDesk builds, once
per account and on first use, the same objects `Services` holds for the hub (IAM gateway,
roles list, EC2 instances list per region, the audited path recording that account's id,
the access review's scan) on clients that act through the account's spoke role.

Those objects are shared by everyone working in the account (the roles list is one list), but
each AWS call is made with the credentials of the RoleDesk user of the request, so the member
account's CloudTrail shows who (`roledesk-<user>`): AccountClients picks the user's clients
per call from `acting_user`, which the request (and a background run it starts) carries.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from app.accounts.hub import AccountHub
from app.accounts.model import Account, AccountList
from app.audit.audited import AuditedAws, os_user
from app.aws.clients import AwsClients
from app.aws.errors import AwsError
from app.aws.iam import IamGateway
from app.aws.types import CallerIdentity
from app.roles.inventory import RoleInventory
from app.services import Services

# The RoleDesk user whose credentials a member account's call uses. Requests set it, and
# background runs and the engine's parallel steps carry it, so every change goes out as the
# person who made it. Reads made on worker threads for lists everyone shares (loading the
# roles or instances list, last-used lookups) have no request: they go out as the last
# RoleDesk user who worked in that account in this process.
acting_user: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "roledesk_acting_user", default=None
)

# How long the switcher's list of accounts is kept: Organizations is not read on every page.
DIRECTORY_SECONDS = 60.0


class AccountClients(AwsClients):
    """Clients for one member account that act, call by call, as the request's RoleDesk
    user (AccountHub.clients: one assumed-role session per account and user)."""

    def __init__(self, hub: AccountHub, account: Account) -> None:  # no super(): delegates
        self._hub = hub
        self.account = account
        self.region = hub.hub_clients.region
        self.endpoint_url = hub.hub_clients.endpoint_url
        self.profile = None
        self._last_user = os_user()

    def for_user(self) -> AwsClients:
        user = acting_user.get()
        if user is None:
            user = self._last_user
        else:
            self._last_user = user
        return self._hub.clients(self.account, user)

    def client(self, service: str, region: str | None = None) -> Any:
        return self.for_user().client(service, region)

    def hook_every_client(self, event: str, handler: Any) -> None:
        self._hub.hub_clients.hook_every_client(event, handler)  # reaches every member

    def for_role(self, source: Any) -> AwsClients:
        return self._hub.hub_clients.for_role(source)


class AccountUnavailable(Exception):
    """The spoke role of the account in the URL cannot be assumed now."""

    def __init__(self, account: Account, error: AwsError) -> None:
        super().__init__(f"{account.label}: {error}")
        self.account = account
        self.error = error


class UnknownAccount(Exception):
    def __init__(self, account_id: str) -> None:
        super().__init__(account_id)
        self.account_id = account_id


def member_services(base: Services, hub: AccountHub, account: Account) -> Services:
    """What `Services` holds for the hub, for a member account. Its lists (roles, EC2
    instances and profiles, the access review's scan and reports) are shared through the
    database like the hub's (app.shared.state, issue 16), stored under the account's id: one
    process reads a list from AWS, the others take it, and a change through any process is
    seen by all."""
    clients = AccountClients(hub, account)
    iam = IamGateway(clients)
    settings = base.settings
    # A lost answer is checked by the hub's reconciler, which asks this account through its
    # spoke role (as at start-up).
    audited = AuditedAws(
        base.audit_log,
        account_id=account.account_id,
        region=settings.aws_region,
        settle_lost=base.audited.settle_lost,
    )
    inventory = RoleInventory(
        iam, ttl_seconds=settings.role_cache_seconds, shared=base.shared, key=account.account_id
    )
    audited.on_success(inventory.on_change)
    return Services(
        settings=settings,
        db=base.db,
        clients=clients,
        identity=CallerIdentity(account.account_id, account.role_arn, ""),
        iam=iam,
        audit_log=base.audit_log,
        audited=audited,
        inventory=inventory,
        sandbox_endpoint=base.sandbox_endpoint,
        runs=base.runs,
        settler=base.settler,
        shared=base.shared,
        is_member=True,
    )


class AccountServices:
    """Per app: the account list for the switcher (kept a minute) and each member account's
    objects (built on first use, then kept)."""

    def __init__(
        self,
        base: Services,
        hub_for: Callable[[], AccountHub],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self._hub_for = hub_for
        self._clock = clock
        self._built: dict[str, Services] = {}
        self._listed: tuple[float, AccountList | None] | None = None
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every member account's objects and the account list (benchmarks: a cold
        start without a new app)."""
        with self._lock:
            self._built.clear()
        self._listed = None

    @property
    def hub(self) -> AccountHub:
        return self._hub_for()

    @property
    def hub_id(self) -> str:
        return self.base.identity.account

    def listed(self) -> AccountList | None:
        """The accounts, kept a minute (None when they cannot be read: the accounts page
        says why; the failure is kept a minute too, so pages do not wait on it)."""
        held = self._listed
        if held is not None and self._clock() - held[0] < DIRECTORY_SECONDS:
            return held[1]
        try:
            accounts: AccountList | None = self.hub.accounts()
        except AwsError:
            accounts = held[1] if held is not None else None
        self._listed = (self._clock(), accounts)
        return accounts

    def find(self, account_id: str) -> Account | None:
        accounts = self.listed()
        found = accounts.find(account_id) if accounts is not None else None
        if found is None and accounts is not None:  # a new account: read the list again
            self._listed = None
            accounts = self.listed()
            found = accounts.find(account_id) if accounts is not None else None
        return found

    def for_account(self, account_id: str | None, user: str) -> Services:
        """The objects for `account_id` (None or the hub's id: today's). Raises
        UnknownAccount, or AccountUnavailable with AWS's error when its role cannot be
        assumed for `user` (the credentials are kept, so this costs one AssumeRole per
        account and user per session)."""
        if not account_id or account_id == self.hub_id:
            return self.base
        with self._lock:
            built = self._built.get(account_id)
        if built is None:
            account = self.find(account_id)
            if account is None:
                raise UnknownAccount(account_id)
            with self._lock:
                built = self._built.setdefault(
                    account_id, member_services(self.base, self.hub, account)
                )
        assert isinstance(built.clients, AccountClients)
        account = built.clients.account
        status = self.hub.status(account, user)
        if status.error is not None:
            raise AccountUnavailable(account, status.error)
        return built

    def changed(self, account_id: str, user: str, action: str, target: str) -> None:
        """RoleDesk changed a role of `account_id` through the hub's audited path (the
        cross-account pair runs there), which tells only the hub's lists: show the change in
        that account's roles list at once (re-read, stored for every process), as the
        audited path does for its own account, before the run is reported done."""
        if account_id == self.hub_id:
            return  # the hub's audited path has told its list
        try:
            services = self.for_account(account_id, user)
        except (UnknownAccount, AccountUnavailable):
            return  # nothing held to correct: the list is read from AWS when it can be
        services.inventory.on_change(action, target)
        services.inventory.settle()

    def in_memory(self, account_id: str) -> bool:
        """Whether the account's roles list is loaded in this process (no AWS call: a
        member account not yet used is not)."""
        if account_id == self.hub_id:
            return self.base.inventory.in_memory
        with self._lock:
            built = self._built.get(account_id)
        return built is not None and built.inventory.in_memory

    def label(self, account_id: str | None) -> str:
        """The account's name and id, for titles and headings."""
        wanted = account_id or self.hub_id
        accounts = self.listed()
        found = accounts.find(wanted) if accounts is not None else None
        return found.label if found is not None else wanted
