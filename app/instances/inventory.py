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

With several processes (issue 16) a change is also a notice naming (region, instance id)
that every other process applies (`changed`: it re-reads that instance's association before
its next view answers), and a "Refresh list" on one process makes the others reload that
region at their next view (app.shared.state).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from app.aws.ec2 import Ec2Gateway
from app.aws.types import Instance, InstanceProfile, ProfileAssociation
from app.instances.listing import InstanceRow, current_associations
from app.shared.state import SharedState

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


def sort_key(instance: Instance) -> tuple[str, str]:
    return (instance.name.lower() or "\uffff", instance.instance_id)


@dataclass
class _Region:
    snapshot: RegionSnapshot | None = None
    loaded_clock: float = 0.0
    changed: set[str] = field(default_factory=set)  # instance ids to re-read
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
    ) -> None:
        self._ec2_for = ec2_for
        self._ttl = ttl_seconds
        self._clock = clock
        self._regions: dict[str, _Region] = {}
        self._lock = threading.Lock()
        self._shared = shared
        if shared is not None:
            shared.subscribe(INVENTORY, self._on_notice)

    def _region(self, region: str) -> _Region:
        with self._lock:
            return self._regions.setdefault(region, _Region())

    # Loading -----------------------------------------------------------------------------

    def refresh(self, region: str, warm: Callable[[], Any] | None = None) -> RegionSnapshot:
        """Reload the region now (the "Refresh list" button), and tell the other processes
        to reload it too."""
        state = self._region(region)
        with state.load_lock:
            found = self._load(region, state, warm)
        if self._shared is not None:
            self._shared.publish(INVENTORY, region, None)
        return found

    def snapshot(self, region: str, warm: Callable[[], Any] | None = None) -> RegionSnapshot:
        """The region's copy: loaded if missing or expired, with RoleDesk's own changes
        since the load read back first.

        Loads and read-backs of a region take turns (its load lock), so a load that began
        before a change can never overwrite the read-back of that change."""
        if self._shared is not None:
            self._shared.catch_up()
        state = self._region(region)
        with state.load_lock:
            found = state.snapshot
            if found is None or self._clock() - state.loaded_clock >= self._ttl:
                found = self._load(region, state, warm)
            return self._read_back_changes(region, state, found)

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
        with self._lock:
            associations = {k: v for k, v in snapshot.associations.items() if k not in ids}
            associations.update(fresh)
            state.snapshot = replace(snapshot, associations=associations)
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

    def on_change(self, action: str, target: str | None) -> None:
        """AuditedAws listener: a successful attach, replace or detach marks its instance."""
        found = instance_of_target(target) if action in ASSOCIATION_ACTIONS else None
        if found is not None:
            self.changed(found[0], [found[1]])
            if self._shared is not None:
                self._shared.publish(INVENTORY, found[0], found[1])

    def _on_notice(self, region: str, instance_id: str | None) -> None:
        """Another process changed an instance's role, or reloaded the region."""
        if instance_id is None:
            self.invalidate(region)
        else:
            self.changed(region, [instance_id])

    def invalidate(self, region: str | None = None) -> None:
        with self._lock:
            for name, state in self._regions.items():
                if region is None or name == region:
                    state.snapshot = None
                    state.changed.clear()
