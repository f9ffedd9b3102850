"""What can be attached to an EC2 instance: instance profiles and the role inside each.

EC2 attaches instance profiles, not roles; people think in roles. So the picker offers every
instance profile that holds a role (named by its role), plus every role that trusts
ec2.amazonaws.com but sits in no profile: choosing one of those first creates a profile with
the role's name, as the console does (aws-iam-behaviour.md A1 "EC2 side effect").

The profile list is kept in memory for a short while: the instances page needs it to name
the role of each association, and re-reading it on every page view would add a whole IAM
call to a page whose budget is the two EC2 calls (issue 4, performance). Memory never refuses:
RoleDesk's own profile changes reload it at once, and a choice it does not know is checked
with AWS (`fresh_choices`) before the page says it cannot be attached.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.aws.errors import NotFound
from app.aws.iam import IamGateway
from app.aws.types import InstanceProfile, PolicyDocument, Role

EC2_SERVICE = "ec2.amazonaws.com"
PROFILE_TTL_SECONDS = 60.0
# Re-read the list at most this often when an association names a profile we do not know.
UNKNOWN_PROFILE_RELOAD_SECONDS = 10.0


def trusts_ec2(policy: PolicyDocument | str) -> bool:
    """True when an Allow statement names ec2.amazonaws.com as a service principal."""
    if isinstance(policy, str):
        return False
    statements: Any = policy.get("Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if not isinstance(principal, dict):
            continue
        services = principal.get("Service")
        names = services if isinstance(services, list) else [services]
        if EC2_SERVICE in names:
            return True
    return False


@dataclass(frozen=True)
class RoleChoice:
    """One entry of the role picker. `value` is what the form posts."""

    role_name: str
    profile: InstanceProfile | None  # None: the profile must be created first

    @property
    def value(self) -> str:
        if self.profile is None:
            return f"role:{self.role_name}"
        return f"profile:{self.profile.name}"

    @property
    def label(self) -> str:
        if self.profile is None:
            return f"{self.role_name} (no instance profile yet: RoleDesk creates one)"
        if self.profile.name == self.role_name:
            return self.role_name
        return f"{self.role_name} (instance profile {self.profile.name})"

    @property
    def needs_profile(self) -> bool:
        return self.profile is None


class ProfileCatalog:
    """Instance profiles of the account, read with ListInstanceProfiles and kept briefly."""

    def __init__(
        self,
        iam: IamGateway,
        *,
        ttl_seconds: float = PROFILE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._iam = iam
        self._ttl = ttl_seconds
        self._clock = clock
        self._profiles: list[InstanceProfile] | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    def profiles(self) -> list[InstanceProfile]:
        with self._lock:
            if self._profiles is None or self._clock() - self._loaded >= self._ttl:
                self._profiles = sorted(self._iam.list_instance_profiles(), key=lambda p: p.name)
                self._loaded = self._clock()
            return self._profiles

    def by_arn(self, wanted: Iterable[str] = ()) -> dict[str, InstanceProfile]:
        """Profiles by ARN; re-reads the list (rate-limited) if a wanted ARN is unknown."""
        found = {p.arn: p for p in self.profiles()}
        missing = [arn for arn in wanted if arn and arn not in found]
        if missing and self._clock() - self._loaded >= UNKNOWN_PROFILE_RELOAD_SECONDS:
            self.invalidate()
            found = {p.arn: p for p in self.profiles()}
        return found

    def invalidate(self) -> None:
        with self._lock:
            self._profiles = None

    def on_change(self, action: str, _target: str | None) -> None:
        """After RoleDesk changed an instance profile (the wizard making an EC2 role's, for
        one), read the list again, so the picker offers it at once (the audited path calls
        this)."""
        if is_profile_change(action):
            self.invalidate()


def is_profile_change(action: str) -> bool:
    """An IAM change to an instance profile (create, delete, its role added or removed);
    not EC2's Associate/Replace/DisassociateIamInstanceProfile, which change an instance's
    association and leave the list of profiles as it was."""
    return action.startswith("iam:") and "InstanceProfile" in action


def fresh_choices(
    catalog: ProfileCatalog, iam: IamGateway, roles: list[Role], posted: str
) -> list[RoleChoice]:
    """The picker's choices re-read from AWS, for a posted choice that memory does not know:
    the profile list is kept for a minute and the roles list may predate a role made
    elsewhere, so a miss is checked with AWS before it is refused."""
    catalog.invalidate()
    kind, _, name = posted.partition(":")
    if kind == "role" and name and not any(r.name == name for r in roles):
        with contextlib.suppress(NotFound):  # gone from AWS too: refused below
            roles = [*roles, iam.get_role(name)]
    return role_choices(catalog.profiles(), roles)


def role_choices(profiles: list[InstanceProfile], roles: Iterable[Role]) -> list[RoleChoice]:
    """Profiles holding a role, then EC2-trusting roles in no profile; sorted by role name."""
    in_profiles = {name.lower() for p in profiles for name in p.role_names}
    choices = [RoleChoice(p.role_names[0], p) for p in profiles if p.role_names]
    profile_names = {p.name.lower() for p in profiles}
    for role in roles:
        if role.name.lower() in in_profiles or not trusts_ec2(role.trust_policy):
            continue
        # A profile with the role's name but holding nothing (or another role) would make
        # the console-style "create a same-named profile" step fail; such roles are left out.
        if role.name.lower() not in profile_names:
            choices.append(RoleChoice(role.name, None))
    return sorted(choices, key=lambda c: (c.role_name.lower(), c.value))


def find_choice(choices: list[RoleChoice], value: str) -> RoleChoice | None:
    return next((c for c in choices if c.value == value), None)
