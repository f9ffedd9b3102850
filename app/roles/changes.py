"""Changes to an existing role, each a plan for the operations engine (app.operations).

Each kind of change reads the part of the role it changes (`current`), fingerprints it
(`fingerprint`) so the form can carry the state it was based on, and builds its plan. Apply
refuses when the fingerprint no longer matches: the role was changed behind the user's back
(in the console, say), and nothing is applied.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.aws.errors import NotFound
from app.aws.types import Role, Tag
from app.instances.role_instances import RegionScan, RoleInstances
from app.operations.plan import STOP, Plan, Step, Undo
from app.services import Services

REVOKE_POLICY = "AWSRevokeOlderSessions"
MIN_SESSION, MAX_SESSION = 3600, 43200
SESSION_PRESETS = (1, 2, 4, 8, 12)  # hours, as the console offers


def fingerprint(state: Any) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def pretty(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document, indent=2)


# Trust policy -----------------------------------------------------------------------------


def trust_state(role: Role) -> dict[str, Any]:
    doc = role.trust_policy
    return {"trust": json.loads(doc) if isinstance(doc, str) else doc}


def trust_plan(services: Services, role: Role, document: dict[str, Any]) -> Plan:
    iam = services.iam
    old = trust_state(role)["trust"]
    return Plan(
        "edit-trust",
        f"Update the trust policy of {role.name}",
        (
            Step(
                "trust",
                "Update the trust policy",
                role.arn,
                iam.update_trust_policy,
                {"role_name": role.name, "document": document},
                undo=Undo(
                    "Put the previous trust policy back",
                    iam.update_trust_policy,
                    {"role_name": role.name, "document": old},
                ),
                before={"document": old},
                after={"document": document},
            ),
        ),
        details={"role": role.name},
    )


# Settings: description and maximum session duration --------------------------------------


def settings_state(role: Role) -> dict[str, Any]:
    return {"description": role.description, "max_session_duration": role.max_session_duration}


def settings_plan(services: Services, role: Role, description: str, seconds: int) -> Plan:
    iam = services.iam
    return Plan(
        "edit-settings",
        f"Update the settings of {role.name}",
        (
            Step(
                "settings",
                "Update the description and maximum session duration",
                role.arn,
                iam.update_role,
                {
                    "role_name": role.name,
                    "description": description,
                    "max_session_duration": seconds,
                },
                undo=Undo(
                    "Put the previous settings back",
                    iam.update_role,
                    {
                        "role_name": role.name,
                        "description": role.description,
                        "max_session_duration": role.max_session_duration,
                    },
                ),
                before=settings_state(role),
                after={"description": description, "max_session_duration": seconds},
            ),
        ),
        details={"role": role.name},
    )


def parse_seconds(raw: str) -> tuple[int | None, str | None]:
    """A whole number of seconds, 3,600 to 43,200; (value, error)."""
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        return None, "Enter a whole number of seconds."
    value = int(raw)
    if not MIN_SESSION <= value <= MAX_SESSION:
        return None, "The maximum session duration is 3,600 to 43,200 seconds (1 to 12 hours)."
    return value, None


# Revoke active sessions (A6) --------------------------------------------------------------


def revoke_document(now: datetime) -> dict[str, Any]:
    """The console's policy: deny everything to sessions issued before `now`."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {
                    "DateLessThan": {
                        "aws:TokenIssueTime": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                    }
                },
            }
        ],
    }


def last_revoked(services: Services, role_name: str) -> str | None:
    """When sessions were last revoked (the time in the revoke policy), or None."""
    try:
        return revoked_at(services.iam.get_role_policy(role_name, REVOKE_POLICY).document)
    except NotFound:
        return None


def revoked_at(doc: Any) -> str:
    """The time in an AWSRevokeOlderSessions document."""
    try:
        statement = (doc if isinstance(doc, dict) else json.loads(doc))["Statement"]
        statement = statement[0] if isinstance(statement, list) else statement
        return str(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"])
    except (KeyError, IndexError, TypeError, ValueError):
        return "unknown time (the policy was changed outside RoleDesk)"


def revoke_plan(services: Services, role: Role, now: datetime) -> Plan:
    return Plan(
        "revoke-sessions",
        f"Revoke active sessions of {role.name}",
        (
            Step(
                "revoke",
                f"Put inline policy {REVOKE_POLICY}",
                role.arn,
                services.iam.put_role_policy,
                {
                    "role_name": role.name,
                    "policy_name": REVOKE_POLICY,
                    "document": revoke_document(now),
                },
            ),
        ),
        details={"role": role.name},
    )


# Delete (A4: the console's cascade) -------------------------------------------------------


def is_service_linked(role: Role) -> bool:
    return role.path.startswith("/aws-service-role/")


def service_linked_refusal(role: Role) -> str:
    return (
        f"{role.name} is a service-linked role: the AWS service that created it owns it, and "
        "IAM lets that service delete it only once nothing uses it. Delete it with "
        f"`aws iam delete-service-linked-role --role-name {role.name}` (or from the service's "
        "own console)."
    )


@dataclass(frozen=True)
class BlastRadius:
    role: Role
    attached: list[Any]
    inline: list[str]
    profiles: list[Any]
    instances: RoleInstances  # in every region RoleDesk knows (none read without a scan)

    def state(self) -> dict[str, Any]:
        return {
            "attached": sorted(p.arn for p in self.attached),
            "inline": sorted(self.inline),
            "profiles": sorted((p.name, tuple(sorted(p.role_names))) for p in self.profiles),
        }


def blast_radius(services: Services, name: str, scan: RegionScan | None = None) -> BlastRadius:
    """What deleting the role takes with it, read side by side (the role page's reads), with
    the instances using its profiles in every region of `scan` (without one, the instances
    are not read: a delete being applied needs only what it will remove)."""
    from app.roles.routes import read_role_page

    role, attached, inline, profiles, instances = read_role_page(
        services, name, documents=False, scan=scan
    )
    return BlastRadius(role, attached, [p.name for p in inline], profiles, instances)


def delete_plan(services: Services, radius: BlastRadius) -> Plan:
    """Remove the role from its instance profiles (deleting the one named after the role when
    no other role is in it), detach its managed policies, delete its inline policies, then
    DeleteRole. The removals are independent of one another; DeleteRole waits for all, the
    profile's deletion included, so a refusal anywhere leaves the role to retry on.
    A failure stops the run; a retry plans again from what AWS then holds."""
    iam, role = services.iam, radius.role
    name = role.name
    steps: list[Step] = []
    for profile in radius.profiles:
        key = f"remove:{profile.name}"
        steps.append(
            Step(
                key,
                f"Remove the role from instance profile {profile.name}",
                profile.arn,
                iam.remove_role_from_instance_profile,
                {"profile_name": profile.name, "role_name": name},
            )
        )
        if profile.name == name and set(profile.role_names) <= {name}:
            steps.append(
                Step(
                    f"profile:{profile.name}",
                    f"Delete instance profile {profile.name}",
                    profile.arn,
                    iam.delete_instance_profile,
                    {"name": profile.name},
                    (key,),
                )
            )
    for policy in radius.attached:
        steps.append(
            Step(
                f"detach:{policy.arn}",
                f"Detach {policy.name}",
                role.arn,
                iam.detach_role_policy,
                {"role_name": name, "policy_arn": policy.arn},
            )
        )
    for inline in radius.inline:
        steps.append(
            Step(
                f"inline:{inline}",
                f"Delete inline policy {inline}",
                role.arn,
                iam.delete_role_policy,
                {"role_name": name, "policy_name": inline},
            )
        )
    steps.append(
        Step(
            "delete",
            f"Delete role {name}",
            role.arn,
            iam.delete_role,
            {"name": name},
            tuple(s.key for s in steps),
            before=radius.state(),
        )
    )
    return Plan(
        "delete-role",
        f"Delete role {name}",
        tuple(steps),
        on_failure=STOP,
        details={"role": name},
    )


# Managed policies: attach and detach ------------------------------------------------------


def attached_state(attached: list[Any]) -> dict[str, Any]:
    return {"attached": sorted(p.arn for p in attached)}


def policies_plan(services: Services, role: Role, attach: list[str], detach: list[str]) -> Plan:
    """Each attach and detach is independent of the others (they could run side by side);
    one unit, so a refusal puts back what was done."""
    iam = services.iam
    attach_call, detach_call = iam.attach_role_policy, iam.detach_role_policy
    steps: list[Step] = []
    for verb, arns, call, undo_verb, undo_call in (
        ("Attach", attach, attach_call, "Detach", detach_call),
        ("Detach", detach, detach_call, "Attach", attach_call),
    ):
        for arn in arns:
            short = arn.rsplit("/", 1)[-1]
            kwargs = {"role_name": role.name, "policy_arn": arn}
            steps.append(
                Step(
                    f"{verb.lower()}:{arn}",
                    f"{verb} {short}",
                    role.arn,
                    call,
                    kwargs,
                    undo=Undo(f"{undo_verb} {short} again", undo_call, kwargs),
                )
            )
    return Plan(
        "edit-policies",
        f"Change the managed policies of {role.name}",
        tuple(steps),
        details={"role": role.name},
    )


# Inline policies --------------------------------------------------------------------------


def inline_state(services: Services, role_name: str) -> dict[str, Any]:
    iam = services.iam
    docs = {}
    for name in iam.list_role_policy_names(role_name):
        doc = iam.get_role_policy(role_name, name).document
        docs[name] = json.loads(doc) if isinstance(doc, str) else doc
    return {"inline": docs}


def inline_size(documents: dict[str, Any]) -> int:
    """Characters counted against the role's aggregate inline quota (A2): minified JSON."""
    return sum(len(json.dumps(d, separators=(",", ":"))) for d in documents.values())


def put_inline_plan(
    services: Services, role: Role, name: str, document: dict[str, Any], old: Any
) -> Plan:
    iam = services.iam
    undo = (
        Undo(
            f"Delete inline policy {name}",
            iam.delete_role_policy,
            {"role_name": role.name, "policy_name": name},
        )
        if old is None
        else Undo(
            f"Put the previous {name} back",
            iam.put_role_policy,
            {"role_name": role.name, "policy_name": name, "document": old},
        )
    )
    return Plan(
        "edit-inline",
        f"{'Add' if old is None else 'Change'} inline policy {name} of {role.name}",
        (
            Step(
                "put",
                f"{'Add' if old is None else 'Change'} inline policy {name}",
                role.arn,
                iam.put_role_policy,
                {"role_name": role.name, "policy_name": name, "document": document},
                undo=undo,
                before={"document": old},
                after={"document": document},
            ),
        ),
        details={"role": role.name},
    )


def delete_inline_plan(services: Services, role: Role, name: str, old: Any) -> Plan:
    iam = services.iam
    return Plan(
        "delete-inline",
        f"Delete inline policy {name} of {role.name}",
        (
            Step(
                "delete",
                f"Delete inline policy {name}",
                role.arn,
                iam.delete_role_policy,
                {"role_name": role.name, "policy_name": name},
                undo=Undo(
                    f"Put {name} back",
                    iam.put_role_policy,
                    {"role_name": role.name, "policy_name": name, "document": old},
                ),
                before={"document": old},
                after={"document": None},
            ),
        ),
        details={"role": role.name},
    )


# Permissions boundary ---------------------------------------------------------------------


def boundary_state(role: Role) -> dict[str, Any]:
    return {"boundary": role.permissions_boundary_arn}


def boundary_plan(services: Services, role: Role, arn: str | None) -> Plan:
    iam, old = services.iam, role.permissions_boundary_arn
    if arn is None:
        step = Step(
            "boundary",
            "Remove the permissions boundary",
            role.arn,
            iam.delete_role_boundary,
            {"role_name": role.name},
            undo=Undo(
                "Set the previous boundary again",
                iam.put_role_boundary,
                {"role_name": role.name, "policy_arn": old},
            )
            if old
            else None,
            before={"boundary": old},
            after={"boundary": None},
        )
    else:
        step = Step(
            "boundary",
            f"Set the permissions boundary to {arn.rsplit('/', 1)[-1]}",
            role.arn,
            iam.put_role_boundary,
            {"role_name": role.name, "policy_arn": arn},
            undo=(
                Undo(
                    "Set the previous boundary again",
                    iam.put_role_boundary,
                    {"role_name": role.name, "policy_arn": old},
                )
                if old
                else Undo(
                    "Remove the boundary again", iam.delete_role_boundary, {"role_name": role.name}
                )
            ),
            before={"boundary": old},
            after={"boundary": arn},
        )
    return Plan(
        "edit-boundary",
        f"Change the permissions boundary of {role.name}",
        (step,),
        details={"role": role.name},
    )


# Tags -------------------------------------------------------------------------------------


def tags_state(role: Role) -> dict[str, Any]:
    return {"tags": sorted([t.key, t.value] for t in role.tags)}


@dataclass(frozen=True)
class TagDiff:
    added: list[Tag]
    changed: list[tuple[Tag, Tag]]  # (before, after)
    removed: list[Tag]

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def tag_diff(current: tuple[Tag, ...], wanted: list[Tag]) -> TagDiff:
    now = {t.key: t for t in current}
    new = {t.key: t for t in wanted}
    return TagDiff(
        [t for k, t in new.items() if k not in now],
        [(now[k], t) for k, t in new.items() if k in now and now[k].value != t.value],
        [t for k, t in now.items() if k not in new],
    )


def tags_plan(services: Services, role: Role, diff: TagDiff) -> Plan:
    """Removals first (a key may come back in another case: role tag keys are
    case-insensitive), then new keys, then changed values; each undone on failure."""
    iam, name = services.iam, role.name
    before = {t.key: t.value for t in role.tags}
    wanted = {k: v for k, v in before.items() if k not in {t.key for t in diff.removed}}
    wanted.update({t.key: t.value for t in diff.added})
    wanted.update({t.key: t.value for _, t in diff.changed})
    was: dict[str, Any] = {"tags": before}
    will_be: dict[str, Any] = {"tags": wanted}
    steps: list[Step] = []
    if diff.removed:
        steps.append(
            Step(
                "untag",
                f"Remove tags {', '.join(t.key for t in diff.removed)}",
                role.arn,
                iam.untag_role,
                {"role_name": name, "keys": tuple(t.key for t in diff.removed)},
                undo=Undo(
                    "Put the removed tags back",
                    iam.tag_role,
                    {"role_name": name, "tags": tuple(diff.removed)},
                ),
                before=was,
                after=will_be,
            )
        )
    after = tuple(s.key for s in steps)
    if diff.added:
        steps.append(
            Step(
                "tag-new",
                f"Add tags {', '.join(t.key for t in diff.added)}",
                role.arn,
                iam.tag_role,
                {"role_name": name, "tags": tuple(diff.added)},
                after,
                undo=Undo(
                    "Remove the added tags",
                    iam.untag_role,
                    {"role_name": name, "keys": tuple(t.key for t in diff.added)},
                ),
                before=was,
                after=will_be,
            )
        )
    if diff.changed:
        steps.append(
            Step(
                "tag-changed",
                f"Change tags {', '.join(t.key for _, t in diff.changed)}",
                role.arn,
                iam.tag_role,
                {"role_name": name, "tags": tuple(t for _, t in diff.changed)},
                after,
                undo=Undo(
                    "Put the previous values back",
                    iam.tag_role,
                    {"role_name": name, "tags": tuple(t for t, _ in diff.changed)},
                ),
                before=was,
                after=will_be,
            )
        )
    return Plan("edit-tags", f"Change the tags of {name}", tuple(steps), details={"role": name})


MAX_BULK_DELETE = 50


def bulk_delete_plan(services: Services, radii: list[BlastRadius]) -> Plan:
    """Several roles' cascades in one plan, one unit per role: a refusal stops that role's
    cascade only."""
    steps: list[Step] = []
    for radius in radii:
        name = radius.role.name
        for step in delete_plan(services, radius).steps:
            steps.append(
                Step(
                    f"{name}/{step.key}",
                    f"{name}: {step.label}",
                    step.target,
                    step.call,
                    step.kwargs,
                    tuple(f"{name}/{d}" for d in step.depends_on),
                    None,
                    name,
                    step.before,
                )
            )
    names = [r.role.name for r in radii]
    return Plan(
        "delete-roles",
        f"Delete {len(names)} roles",
        tuple(steps),
        on_failure=STOP,
        details={"roles": names},
    )
