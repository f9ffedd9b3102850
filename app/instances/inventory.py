"""The EC2 instances of each region, held in memory so paging, filtering and search answer
without calling AWS, kept like the roles list (app.roles.inventory).

With 1,000 instances the two listing calls (DescribeInstances and
DescribeIamInstanceProfileAssociations) took seconds in the sandbox on every view, a page flip
or a filter included; on real AWS each call adds its own round trips. Now the first view of a
region loads both, side by side (plus the instance profiles that name each association's
role, when they are not already held), and later views filter and page the held copy. The
copy's age is shown with a "Refresh list" button, and it reloads after `ttl_seconds`.

RoleDesk's own attach, replace and detach show at once: the audited path reports each
successful change (`on_change`, an AuditedAws listener), which marks that instance as changed,
and the next view re-reads the associations of the changed instances only (one
DescribeIamInstanceProfileAssociations filtered by their ids) before it answers. Marking is
free, so a bulk change of 50 instances costs its own calls and one read afterwards, not a read
per instance. Changes made outside RoleDesk show after a refresh or when the copy expires.

With several processes (issue 16) each region's list is shared through the database like
the roles list (app.shared.state): a full read is stored, so a new process (or one whose copy
expired) takes the stored list while it is fresh; one process reads a region from AWS at a
time (the refresh lock) and the others take its result; "Refresh list" on one process stores
a new read that every process adopts. RoleDesk's own attach, replace and detach are stored off
the run's path with the association AWS answered each change with (no read-back call), and
announced; every other process applies the stored row, not AWS. A run is over only once
those are stored (`settle`, called by the engine).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from app.aws.ec2 import Ec2Gateway
from app.aws.types import Instance, InstanceProfile, ProfileAssociation
from app.instances.listing import InstanceRow, current_associations
from app.shared.state import SharedState, Stored

log = logging.getLogger(__name__)
DETACH_ACTION = "ec2:DisassociateIamInstanceProfile"
READ = "read back"  # a change whose new association is not known from its answer
# Audited actions that change which profile an instance carries.
ASSOCIATION_ACTIONS = frozenset(
    {
        "ec2:AssociateIamInstanceProfile",
        "ec2:ReplaceIamInstanceProfileAssociation",
        "ec2:DisassociateIamInstanceProfile",
    }
)
INSTANCE_ARN_PREFIX = "arn:aws:ec2:"
INVENTORY = "instances"

ProfilesByArn = Callable[[Iterable[str]], dict[str, InstanceProfile]]


def instance_of_target(target: str | None) -> tuple[str, str] | None:
    """`arn:aws:ec2:REGION:ACCOUNT:instance/ID` -> (region, id); anything else -> None."""
    if not target or not target.startswith(INSTANCE_ARN_PREFIX) or ":instance/" not in target:
        return None
    region = target.split(":")[3]
    instance_id = target.rsplit("/", 1)[-1]
    return (region, instance_id) if region and instance_id else None


@dataclass(frozen=True)
class RegionSnapshot:
    """One region's instances (sorted as the page lists them) and their live associations,
    as AWS reported them at `loaded_at`."""

    instances: tuple[Instance, ...]
    associations: dict[str, ProfileAssociation]
    loaded_at: datetime

    def rows(self, profiles_by_arn: ProfilesByArn) -> list[InstanceRow]:
        """The instances joined to their association and its profile (looked up now, so a
        profile created or changed since the load is named correctly)."""
        live = self.associations
        profiles = profiles_by_arn(a.profile_arn for a in live.values())
        return [
            InstanceRow(
                i,
                live.get(i.instance_id),
                profiles.get(live[i.instance_id].profile_arn) if i.instance_id in live else None,
            )
            for i in self.instances
        ]


def instance_to_json(instance: Instance, association: ProfileAssociation | None) -> str:
    """One instance and its live association, as stored in the shared inventory."""
    return json.dumps(
        {
            "instance": {
                "instance_id": instance.instance_id,
                "name": instance.name,
                "state": instance.state,
                "instance_type": instance.instance_type,
                "availability_zone": instance.availability_zone,
                "launched": instance.launched.isoformat() if instance.launched else None,
                "profile_arn": instance.profile_arn,
            },
            "association": (
                {
                    "association_id": association.association_id,
                    "profile_arn": association.profile_arn,
                    "state": association.state,
                }
                if association is not None
                else None
            ),
        },
        separators=(",", ":"),
    )


def instance_from_json(data: str) -> tuple[Instance, ProfileAssociation | None]:
    raw = json.loads(data)
    fields = dict(raw["instance"])
    launched = fields.pop("launched")
    instance = Instance(
        **fields, launched=datetime.fromisoformat(launched) if launched is not None else None
    )
    held = raw["association"]
    association = (
        ProfileAssociation(
            held["association_id"], instance.instance_id, held["profile_arn"], held["state"]
        )
        if held is not None
        else None
    )
    return instance, association


def snapshot_of(stored: Stored) -> RegionSnapshot:
    pairs = [instance_from_json(data) for data in stored.items.values()]
    return RegionSnapshot(
        tuple(sorted((i for i, _ in pairs), key=sort_key)),
        {i.instance_id: a for i, a in pairs if a is not None},
        stored.loaded_at,
    )


def sort_key(instance: Instance) -> tuple[str, str]:
    return (instance.name.lower() or "\uffff", instance.instance_id)


@dataclass
class _Region:
    snapshot: RegionSnapshot | None = None
    loaded_clock: float = 0.0
    changed: set[str] = field(default_factory=set)  # instance ids to re-read
    # Changed here, with the association each change's answer gave (None: detached; READ:
    # not known, read it back): to be stored and announced.
    to_store: dict[str, ProfileAssociation | str | None] = field(default_factory=dict)
    load_lock: threading.Lock = field(default_factory=threading.Lock)


class InstanceInventory:
    """Every region's instances, loaded on first use; see the module docstring."""

    def __init__(
        self,
        ec2_for: Callable[[str], Ec2Gateway],
        *,
        ttl_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedState | None = None,
        account: str = "",
    ) -> None:
        self._ec2_for = ec2_for
        # Which account's instances (issue 17): the hub's are stored keyed by region, a
        # member account's by "<account id>/<region>" (no region name has a "/").
        self._account = account
        self._ttl = ttl_seconds
        self._clock = clock
        self._regions: dict[str, _Region] = {}
        self._lock = threading.Lock()
        self._shared = shared
        self._rereader: ThreadPoolExecutor | None = None
        self._rereads: list[Future[None]] = []
        if shared is not None:
            shared.subscribe(INVENTORY, self._on_notice)

    def _stored_key(self, region: str) -> str:
        return f"{self._account}/{region}" if self._account else region

    def _region_of(self, key: str) -> str | None:
        """The region of a stored key, when it is this account's; None otherwise."""
        account, _, region = key.rpartition("/")
        return region if account == self._account else None

    def _region(self, region: str) -> _Region:
        with self._lock:
            return self._regions.setdefault(region, _Region())

    # Loading -----------------------------------------------------------------------------

    def refresh(self, region: str, warm: Callable[[], Any] | None = None) -> RegionSnapshot:
        """Reload the region now (the "Refresh list" button); with other processes, stored
        for all of them (one reads AWS at a time; a read that finished while this one waited
        its turn is taken instead of reading again)."""
        asked = datetime.now(UTC)
        state = self._region(region)
        with state.load_lock:
            if self._shared is None:
                return self._load(region, state, warm)
            return self._load_shared(region, state, warm, asked)

    def snapshot(self, region: str, warm: Callable[[], Any] | None = None) -> RegionSnapshot:
        """The region's copy: loaded if missing or expired, with RoleDesk's own changes
        since the load read back first.

        Loads and read-backs of a region take turns (its load lock), so a load that began
        before a change can never overwrite the read-back of that change."""
        if self._rereads:
            self.settle()
        if self._shared is not None:
            self._shared.catch_up()
        state = self._region(region)
        with state.load_lock:
            found = state.snapshot
            if found is None or self._clock() - state.loaded_clock >= self._ttl:
                if self._shared is None:
                    found = self._load(region, state, warm)
                else:
                    found = self._load_shared(region, state, warm, None)
            return self._read_back_changes(region, state, found)

    def _load_shared(
        self,
        region: str,
        state: _Region,
        warm: Callable[[], Any] | None,
        asked: datetime | None,
    ) -> RegionSnapshot:
        """The stored list while it is fresh (or, for a refresh, stored after `asked`);
        otherwise AWS, read by one process while the others wait for its result."""
        assert self._shared is not None

        def usable(stored: Stored | None) -> bool:
            if stored is None:
                return False
            return stored.loaded_at >= asked if asked is not None else stored.age() < self._ttl

        key = self._stored_key(region)
        stored = self._shared.load(INVENTORY, key)
        if not usable(stored):
            with self._shared.refresh_lock(INVENTORY, key):
                stored = self._shared.load(INVENTORY, key)
                if not usable(stored):
                    since = self._shared.last_change_id()
                    began = datetime.now(UTC)
                    read = self._load(region, state, warm)
                    items = {
                        i.instance_id: instance_to_json(i, read.associations.get(i.instance_id))
                        for i in read.instances
                    }
                    self._shared.replace_items(INVENTORY, key, items, began, since)
                    stored = self._shared.load(INVENTORY, key)
        assert stored is not None
        if warm is not None and state.snapshot is None:
            warm()  # what a read from AWS would have loaded beside it (the profiles)
        snapshot = snapshot_of(stored)
        with self._lock:
            state.snapshot = snapshot
            state.loaded_clock = self._clock() - stored.age()
        return snapshot

    def _load(self, region: str, state: _Region, warm: Callable[[], Any] | None) -> RegionSnapshot:
        """DescribeInstances and DescribeIamInstanceProfileAssociations side by side (and
        `warm`, e.g. the instance profiles, beside them)."""
        with self._lock:
            # Changes marked from here on may be newer than what this load reads: kept.
            seen_changes = set(state.changed)
        ec2 = self._ec2_for(region)
        with ThreadPoolExecutor(max_workers=3) as pool:
            instances_f = pool.submit(ec2.list_instances)
            associations_f = pool.submit(ec2.list_associations)
            warm_f = pool.submit(warm) if warm is not None else None
            instances, associations = instances_f.result(), associations_f.result()
            if warm_f is not None:
                warm_f.result()
        snapshot = RegionSnapshot(
            tuple(sorted(instances, key=sort_key)),
            current_associations(associations),
            datetime.now(UTC),
        )
        with self._lock:
            state.snapshot = snapshot
            state.loaded_clock = self._clock()
            state.changed -= seen_changes
        return snapshot

    def _read_back_changes(
        self, region: str, state: _Region, snapshot: RegionSnapshot
    ) -> RegionSnapshot:
        """One DescribeIamInstanceProfileAssociations for the instances RoleDesk changed."""
        with self._lock:
            # Taken now: a change marked during the read below is read at the next view.
            ids, state.changed = sorted(state.changed), set()
        if not ids:
            return snapshot
        try:
            fresh = current_associations(self._ec2_for(region).list_associations(ids))
        except Exception:
            with self._lock:  # still to do; the error reaches the page (shown, not hidden)
                state.changed.update(ids)
            raise
        return self._apply(state, ids, fresh) or snapshot

    def _apply(
        self, state: _Region, ids: Iterable[str], fresh: dict[str, ProfileAssociation]
    ) -> RegionSnapshot | None:
        """These instances' associations are now `fresh` (absent: none)."""
        gone = set(ids)
        with self._lock:
            if state.snapshot is None:
                return None
            held = state.snapshot.associations
            associations = {k: v for k, v in held.items() if k not in gone}
            associations.update({k: v for k, v in fresh.items() if k in gone})
            state.snapshot = replace(state.snapshot, associations=associations)
            return state.snapshot

    def loaded_at(self, region: str) -> datetime | None:
        found = self._region(region).snapshot
        return found.loaded_at if found else None

    # Changes -----------------------------------------------------------------------------

    def changed(self, region: str, instance_ids: Iterable[str]) -> None:
        """These instances' roles changed: read them back before the next view answers."""
        state = self._region(region)
        with self._lock:
            state.changed.update(instance_ids)

    def on_change(self, action: str, target: str | None, answer: Any = None) -> None:
        """AuditedAws listener (`on_result`): a successful attach, replace or detach marks
        its instance. With other processes it is stored and announced off the run's path,
        with the association AWS answered the change with (Associate and Replace return
        the new association; a detached instance has none): reading it back from AWS put
        one more call after a bulk change's last change on the run's path (issue 15)."""
        found = instance_of_target(target) if action in ASSOCIATION_ACTIONS else None
        if found is None:
            return
        region, instance_id = found
        if self._shared is None:
            self.changed(region, [instance_id])  # read back before the next view answers
            return
        known: ProfileAssociation | str | None = READ  # no answer to go by: read it back
        if action == DETACH_ACTION:
            known = None
        elif isinstance(answer, ProfileAssociation):
            known = answer
        state = self._region(region)
        with self._lock:
            state.to_store[instance_id] = known
            if self._rereader is None:
                self._rereader = ThreadPoolExecutor(1, thread_name_prefix="instances-store")
            # One thread; each run stores every instance changed until then, so a bulk
            # change of 50 instances costs a few transactions, not 50.
            self._rereads.append(self._rereader.submit(self._store_changes, region))

    def settle(self) -> None:
        """Wait for the read-backs of RoleDesk's own changes started so far (and so for
        their notices to the other processes). The operations engine calls it before a run
        ends."""
        with self._lock:
            started = list(self._rereads)
        for future in started:
            future.exception()  # waits; _store_changes handles its own errors
        with self._lock:
            self._rereads = [f for f in self._rereads if not f.done()]

    def _store_changes(self, region: str) -> None:
        assert self._shared is not None
        state = self._region(region)
        key = self._stored_key(region)
        with self._lock:
            known, state.to_store = state.to_store, {}
        if not known:
            return
        ids = sorted(known)
        fresh = {i: a for i, a in known.items() if isinstance(a, ProfileAssociation)}
        try:
            unknown = [i for i in ids if known[i] == READ]
            if unknown:
                fresh.update(current_associations(self._ec2_for(region).list_associations(unknown)))
            with state.load_lock:
                # Instances not in the stored list are left out: the next full read has them.
                stored = self._shared.load_items(INVENTORY, key, ids)
                updates: dict[str, str | None] = {}
                for instance_id, data in stored.items():
                    instance, _ = instance_from_json(data)
                    updates[instance_id] = instance_to_json(instance, fresh.get(instance_id))
                self._shared.put_items(INVENTORY, key, updates)
                self._apply(state, ids, fresh)
        except Exception:
            # The stored list cannot be brought up to date: every process reads the region
            # from AWS at its next view (which shows the error if AWS still fails).
            log.exception("storing the instances RoleDesk changed failed")
            self.invalidate(region)
            self._shared.expire(INVENTORY, key)

    def _on_notice(self, key: str, instance_id: str | None) -> None:
        """Another process changed an instance's role (its stored row), or stored a new
        read of the region (adopted at the next view)."""
        region = self._region_of(key)
        if region is None:
            return  # another account's instances
        if instance_id is None:
            self.invalidate(region)
            return
        assert self._shared is not None
        data = self._shared.load_item(INVENTORY, key, instance_id)
        if data is None:
            self.changed(region, [instance_id])  # not stored: read it from AWS
            return
        _, association = instance_from_json(data)
        fresh = {instance_id: association} if association is not None else {}
        self._apply(self._region(region), [instance_id], fresh)

    def invalidate(self, region: str | None = None) -> None:
        with self._lock:
            for name, state in self._regions.items():
                if region is None or name == region:
                    state.snapshot = None
                    state.changed.clear()
