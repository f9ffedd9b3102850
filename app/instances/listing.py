"""The EC2 instances of a region with the role each one carries.

The role comes from DescribeIamInstanceProfileAssociations joined to the instance profiles,
never from DescribeInstances' IamInstanceProfile: moto leaves that field stale after a
Replace, and on AWS it lags the association too (aws-iam-behaviour.md B1). The page makes
exactly one DescribeInstances and one DescribeIamInstanceProfileAssociations (both paginated,
run side by side) and filters and pages in memory, so 1,000 instances cost two calls, not
1,000 (issue 4, performance).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from app.aws.ec2 import Ec2Gateway
from app.aws.types import Instance, InstanceProfile, ProfileAssociation
from app.web.paging import paged

INSTANCE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
UNCHOOSABLE_STATES = frozenset({"shutting-down", "terminated"})
# States of an association that still ties a profile to the instance.
LIVE_ASSOCIATION_STATES = ("associating", "associated", "disassociating")
SETTLING_ASSOCIATION_STATES = frozenset({"associating", "disassociating"})
NO_ROLE = "(none)"  # role filter value for "instances without a role"; not a valid role name
PER_PAGE = 50  # also the bulk limit: one page can be selected at once


def instance_arn(region: str, account: str, instance_id: str) -> str:
    return f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"


def current_associations(
    associations: Iterable[ProfileAssociation],
) -> dict[str, ProfileAssociation]:
    """The live association of each instance. During a change AWS can briefly list two (one
    disassociating, one associating); the one being set up is the one that will stay."""
    rank = {"associated": 0, "associating": 1, "disassociating": 2}
    found: dict[str, ProfileAssociation] = {}
    for a in associations:
        if a.state not in rank:
            continue
        held = found.get(a.instance_id)
        if held is None or rank[a.state] < rank[held.state]:
            found[a.instance_id] = a
    return found


@dataclass(frozen=True)
class InstanceRow:
    instance: Instance
    association: ProfileAssociation | None
    profile: InstanceProfile | None

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

    @property
    def profile_name(self) -> str | None:
        if self.association is None:
            return None
        return self.profile.name if self.profile else self.association.profile_name

    @property
    def role_name(self) -> str | None:
        if self.profile is None or not self.profile.role_names:
            return None
        return self.profile.role_names[0]

    @property
    def choosable(self) -> bool:
        return self.instance.state not in UNCHOOSABLE_STATES

    @property
    def describe_role(self) -> str:
        """For people: 'role (profile p)', or why there is none."""
        if self.association is None:
            return "No role"
        if self.profile is None:
            return f"instance profile {self.association.profile_name} (role unknown)"
        if not self.role_name:
            return f"instance profile {self.profile.name} (holds no role)"
        if self.profile.name == self.role_name:
            return self.role_name
        return f"{self.role_name} (instance profile {self.profile.name})"


def fetch_rows(
    ec2: Ec2Gateway, profiles_by_arn: Any, instance_ids: list[str] | None = None
) -> list[InstanceRow]:
    """Instances joined to their live association and its profile.

    `profiles_by_arn(arns)` returns the profiles by ARN (see ProfileCatalog.by_arn).
    With `instance_ids`, only those (unknown ids are left out rather than failing).
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        if instance_ids is None:
            instances_f = pool.submit(ec2.list_instances)
            associations_f = pool.submit(ec2.list_associations)
        else:
            instances_f = pool.submit(ec2.find_instances, instance_ids)
            associations_f = pool.submit(ec2.list_associations, instance_ids)
        instances, associations = instances_f.result(), associations_f.result()
    live = current_associations(associations)
    profiles: dict[str, InstanceProfile] = profiles_by_arn(a.profile_arn for a in live.values())
    rows = [
        InstanceRow(
            i,
            live.get(i.instance_id),
            profiles.get(live[i.instance_id].profile_arn) if i.instance_id in live else None,
        )
        for i in instances
    ]
    rows.sort(key=lambda r: (r.instance.name.lower() or "\uffff", r.instance_id))
    return rows


@dataclass(frozen=True)
class InstancesQuery:
    """The instances page's query string, bounded so no input can fail the page."""

    region: str
    name: str = ""
    state: str = ""
    role: str = ""
    page: int = 1

    def url(self, **changes: Any) -> str:
        values = {
            "region": self.region,
            "name": self.name,
            "state": self.state,
            "role": self.role,
            "page": self.page,
            **changes,
        }
        kept = {k: v for k, v in values.items() if v not in ("", None) and v != 1}
        return "/instances?" + urlencode(kept)

    def matches(self, row: InstanceRow) -> bool:
        if self.name:
            needle = self.name.lower()
            if needle not in row.instance.name.lower() and needle not in row.instance_id:
                return False
        if self.state and row.instance.state != self.state:
            return False
        if self.role == NO_ROLE:
            return row.association is None
        return not self.role or (row.role_name or "").lower() == self.role.lower()


@dataclass(frozen=True)
class InstancesPage:
    rows: list[InstanceRow]
    total: int
    matching: int
    page: int
    pages: int


def page_of(rows: list[InstanceRow], query: InstancesQuery) -> InstancesPage:
    found = [r for r in rows if query.matches(r)]
    shown, page, pages = paged(found, query.page, PER_PAGE)
    return InstancesPage(shown, len(rows), len(found), page, pages)
