"""The EC2 instances using a role, in every region RoleDesk knows (issue 11).

For the role page ("EC2 instances using this role") and a delete's blast radius: a role's
instance profiles can be attached to instances in any region, so each region is read, side
by side (one DescribeIamInstanceProfileAssociations per region, then DescribeInstances only
where one of the role's profiles is in use). A region AWS refuses (an opt-in region not
enabled, a missing ec2:Describe* permission, an SCP) is reported as unavailable with AWS's
error; the other regions are still shown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from app.aws.ec2 import Ec2Gateway
from app.aws.errors import AwsError
from app.aws.types import InstanceProfile, ProfileAssociation
from app.instances.listing import InstanceRow, current_associations

# Regions are read at once: each read is one call waiting on the network, and a partition has
# about thirty regions.
MAX_PARALLEL_REGIONS = 32
T = TypeVar("T")


@dataclass(frozen=True)
class RegionInstances:
    """One region's instances using the role, or the AWS error that kept them unknown."""

    region: str
    rows: list[InstanceRow] = field(default_factory=list)
    error: AwsError | None = None


@dataclass(frozen=True)
class RoleInstances:
    """Every region's answer, in region order."""

    regions: list[RegionInstances] = field(default_factory=list)

    @property
    def rows(self) -> list[tuple[str, InstanceRow]]:
        """(region, row) for every instance found."""
        return [(r.region, row) for r in self.regions for row in r.rows]

    @property
    def unavailable(self) -> list[RegionInstances]:
        return [r for r in self.regions if r.error is not None]

    @property
    def known(self) -> bool:
        """False when no region could be read: the count is then unknown, not zero."""
        return not self.regions or len(self.unavailable) < len(self.regions)


class RegionScan:
    """Reads each region's instance profile associations once (kept for the scan's life, so a
    bulk delete's blast radius asks each region once for all its roles), then finds the
    instances using given instance profiles."""

    def __init__(self, ec2_for: Callable[[str], Ec2Gateway], regions: Sequence[str]) -> None:
        self._ec2_for = ec2_for
        self.regions = list(dict.fromkeys(regions))
        self._lock = threading.Lock()
        self._live: dict[str, dict[str, ProfileAssociation] | AwsError] | None = None

    def _read(self, region: str) -> dict[str, ProfileAssociation] | AwsError:
        try:
            return current_associations(self._ec2_for(region).list_associations())
        except AwsError as exc:
            return exc

    def _associations(self) -> dict[str, dict[str, ProfileAssociation] | AwsError]:
        with self._lock:
            if self._live is None:
                self._live = dict(zip(self.regions, self._each(self._read), strict=True))
            return self._live

    def _each(self, read: Callable[[str], T]) -> list[T]:
        if len(self.regions) <= 1:
            return [read(r) for r in self.regions]
        workers = min(MAX_PARALLEL_REGIONS, len(self.regions))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(read, self.regions))

    def instances(self, profiles: list[InstanceProfile]) -> RoleInstances:
        """The instances whose live association is one of `profiles`, region by region."""
        if not profiles:
            return RoleInstances([RegionInstances(r) for r in self.regions])
        by_arn = {p.arn: p for p in profiles}
        live = self._associations()

        def one(region: str) -> RegionInstances:
            found = live[region]
            if isinstance(found, AwsError):
                return RegionInstances(region, error=found)
            using = {iid: a for iid, a in found.items() if a.profile_arn in by_arn}
            if not using:
                return RegionInstances(region)
            try:
                instances = self._ec2_for(region).find_instances(sorted(using))
            except AwsError as exc:
                return RegionInstances(region, error=exc)
            rows = [
                InstanceRow(i, using[i.instance_id], by_arn[using[i.instance_id].profile_arn])
                for i in instances
            ]
            rows.sort(key=lambda r: (r.instance.name.lower(), r.instance_id))
            return RegionInstances(region, rows)

        return RoleInstances(self._each(one))
