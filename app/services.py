"""Wiring: one `Services` object holds everything a request needs.

Built by the CLI (or the tests) from settings, then handed to `create_app`. Nothing here runs at
import time.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from app.audit.audited import AuditedAws
from app.audit.log import AuditLog
from app.audit.reconcile import lost_answer_settler
from app.aws.clients import AwsClients
from app.aws.ec2 import Ec2Gateway
from app.aws.iam import IamGateway
from app.aws.sts import StsGateway
from app.aws.types import CallerIdentity
from app.db import Database
from app.instances.catalog import is_profile_change
from app.instances.inventory import InstanceInventory
from app.operations.background import BackgroundRuns
from app.operations.settle import Settler
from app.review.last_accessed import LastAccessedReports
from app.review.records import ReviewRecords
from app.review.scan import AccountScan
from app.roles.inventory import RoleInventory
from app.settings import Settings
from app.shared.state import SharedState

# Notices for the instance profiles (the EC2 role picker's list, app.instances.catalog).
log = logging.getLogger(__name__)

PROFILES = "instance_profiles"


@dataclass
class Services:
    settings: Settings
    db: Database
    clients: AwsClients
    identity: CallerIdentity
    iam: IamGateway
    audit_log: AuditLog
    audited: AuditedAws
    inventory: RoleInventory
    sandbox_endpoint: str | None = None
    # What the processes of one installation share (issue 16); None: this process alone.
    shared: SharedState | None = None
    # The operations engine's background runs and its settle loop (app.operations).
    runs: BackgroundRuns = field(default_factory=BackgroundRuns)
    settler: Settler = field(default_factory=Settler)
    _ec2: dict[str, Ec2Gateway] = field(default_factory=dict)
    # A member account's objects that routers build on first use (its wizard, its EC2
    # page's state); the hub account's stay on app.state (app.accounts.context).
    per_account: dict[str, object] = field(default_factory=dict)
    is_member: bool = False
    instances: InstanceInventory = field(init=False)
    access_scan: AccountScan = field(init=False)
    reviews: ReviewRecords = field(init=False)
    last_accessed: LastAccessedReports = field(init=False)

    def __post_init__(self) -> None:
        # The EC2 instances list, kept like the roles list: RoleDesk's own attach, replace
        # and detach reach it through the audited path.
        self.instances = InstanceInventory(
            self.ec2,
            ttl_seconds=self.settings.instance_cache_seconds,
            shared=self.shared,
            account=self.shared_key,
        )
        self.audited.on_result(self.instances.on_change)
        # The access review's account scan, kept the same way (app.review).
        # With a shared state its result and progress are stored for every process.
        self.access_scan = AccountScan(
            self.iam,
            self.identity.account,
            ttl_seconds=self.settings.role_cache_seconds,
            shared=self.shared,
        )
        self.audited.on_success(self.access_scan.on_change)
        self.reviews = ReviewRecords(self.db, self.audit_log, self.identity.account)
        # Which services each role used (IAM Access Advisor), asked for per role (and
        # stored for every process).
        self.last_accessed = LastAccessedReports(
            self.iam, shared=self.shared, account_id=self.identity.account
        )
        self.audited.on_success(self._profiles_changed)
        # The profile-list notices, written off the calls' path, in order (one thread).
        self._notices: ThreadPoolExecutor | None = None
        self._notices_sent: list[Future[None]] = []
        self._notices_lock = threading.Lock()

    @property
    def shared_key(self) -> str:
        """This account's key in the shared state's lists: empty for the hub (the account
        RoleDesk's own credentials are in), the account id for a member account."""
        return self.identity.account if self.is_member else ""

    def _profiles_changed(self, action: str, _target: str | None) -> None:
        """An instance profile changed: every process reads the profile list again.

        The notice (a write transaction) is written on a thread of its own: written on the
        call's thread, it came between CreateInstanceProfile's answer and
        AddRoleToInstanceProfile, on a create's critical path (issue 13). The operations
        engine waits for it (`settle_notices`) before a run ends, as for the roles list's
        re-reads, so every process sees the change once the run is done."""
        # iam: only: EC2's Associate/Replace/DisassociateIamInstanceProfile change an
        # instance's association, not the profile list, and a bulk change makes 50 of them.
        if not is_profile_change(action) or self.shared is None:
            return
        with self._notices_lock:
            if self._notices is None:
                self._notices = ThreadPoolExecutor(1, thread_name_prefix="profile-notices")
            self._notices_sent.append(self._notices.submit(self._publish_profiles))

    def _publish_profiles(self) -> None:
        assert self.shared is not None
        try:
            self.shared.publish(PROFILES, self.shared_key, None)
        except Exception:  # the profile list's age still ends other processes' copies
            log.exception("could not publish the instance profiles' change")

    def settle_notices(self) -> None:
        """Wait for the change notices started so far (see _profiles_changed)."""
        with self._notices_lock:
            sent, self._notices_sent = self._notices_sent, []
        wait(sent)

    def catch_up(self) -> None:
        """Apply the other processes' changes before answering from memory."""
        if self.shared is not None:
            self.shared.catch_up()

    def ec2(self, region: str | None = None) -> Ec2Gateway:
        region = region or self.settings.aws_region
        if region not in self._ec2:
            self._ec2[region] = Ec2Gateway(self.clients, region)
        return self._ec2[region]

    @property
    def mode_label(self) -> str:
        return "Sandbox" if self.settings.is_sandbox else "AWS"


def build_services(settings: Settings, *, sandbox_endpoint: str | None = None) -> Services:
    """Connect to AWS (or the sandbox at `sandbox_endpoint`) and the database.

    Raises app.aws.errors.CredentialsProblem (or another AwsError) when sts:GetCallerIdentity
    fails, so the CLI can explain it in one line.
    """
    endpoint = sandbox_endpoint or settings.aws_endpoint_url
    clients = AwsClients(
        region=settings.aws_region,
        endpoint_url=endpoint,
        profile=None if settings.is_sandbox else settings.aws_profile,
        sandbox=settings.is_sandbox,
    )
    identity = StsGateway(clients).caller_identity()
    db = Database(settings.database_url)
    audit_log = AuditLog(db)
    audited = AuditedAws(audit_log, account_id=identity.account, region=settings.aws_region)
    iam = IamGateway(clients)
    shared = SharedState(db)
    inventory = RoleInventory(iam, ttl_seconds=settings.role_cache_seconds, shared=shared)
    audited.on_success(inventory.on_change)
    services = Services(
        settings=settings,
        db=db,
        clients=clients,
        identity=identity,
        iam=iam,
        audit_log=audit_log,
        audited=audited,
        inventory=inventory,
        sandbox_endpoint=endpoint if settings.is_sandbox else None,
        shared=shared,
    )
    # A change whose answer was lost is checked in AWS at once with the services' gateways.
    audited.settle_lost = lost_answer_settler(services)
    return services
