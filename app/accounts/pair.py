"""A cross-account role pair as one plan on the operations engine: "let account A's role
use account B".

In account B a new role trusts exactly the role in account A (with an external ID, or only
while A belongs to the organization: `aws:PrincipalOrgID`; optionally only with MFA); in
account A that role gets a policy allowing `sts:AssumeRole` on exactly the new role: an inline
policy, or a customer managed policy of the same name attached to it. Both sides are needed:
a cross-account AssumeRole needs the trust (resource side) and the caller's own permission
(identity side). One unit, rule `undo`: a failure anywhere removes what the run made, newest
first, in both accounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.accounts.hub import AccountHub
from app.accounts.model import Account
from app.audit.audited import AuditContext
from app.aws.errors import AlreadyExists, AwsError, NotFound
from app.aws.iam import IamGateway
from app.operations.engine import (
    DONE,
    FAILED,
    NOT_STARTED,
    UNDO_FAILED,
    UNDONE,
    Engine,
    RunResult,
    StepResult,
)
from app.operations.plan import UNDO, Plan, Step, Undo
from app.shared.names import NameClaims

KIND = "cross-account-pair"
EXTERNAL_ID = "external_id"
ORGANIZATION = "organization"
# Where A's permission lives: an inline policy on A's role, or a customer managed policy
# attached to it (which others can then see, reuse and audit as a policy of the account).
INLINE = "inline"
MANAGED = "managed"


@dataclass(frozen=True)
class Pair:
    source: Account  # A: where the role that will use the new role lives
    source_role_arn: str  # read from AWS (GetRole), path included
    target: Account  # B: where the new role is made
    role_name: str
    condition: str  # EXTERNAL_ID or ORGANIZATION
    external_id: str = ""
    org_id: str = ""
    require_mfa: bool = False
    description: str = ""
    managed_policy_arns: tuple[str, ...] = ()
    source_policy: str = INLINE  # INLINE or MANAGED

    @property
    def source_role_name(self) -> str:
        return self.source_role_arn.rsplit("/", 1)[-1]

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.target.account_id}:role/{self.role_name}"

    @property
    def policy_name(self) -> str:
        """A's policy (inline, or managed): says where it leads (128 characters at most)."""
        return f"AssumeRole-{self.target.account_id}-{self.role_name}"[:128]

    @property
    def managed(self) -> bool:
        return self.source_policy == MANAGED

    @property
    def policy_arn(self) -> str:
        """The customer managed policy's ARN in account A (path "/")."""
        return f"arn:aws:iam::{self.source.account_id}:policy/{self.policy_name}"


def trust_policy(pair: Pair) -> dict[str, Any]:
    """B's trust: A's role only, under the chosen condition."""
    condition: dict[str, Any] = {}
    if pair.condition == EXTERNAL_ID:
        condition["StringEquals"] = {"sts:ExternalId": pair.external_id}
    else:
        condition["StringEquals"] = {"aws:PrincipalOrgID": pair.org_id}
    if pair.require_mfa:
        condition["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": pair.source_role_arn},
                "Action": "sts:AssumeRole",
                "Condition": condition,
            }
        ],
    }


def assume_policy(pair: Pair) -> dict[str, Any]:
    """A's side: sts:AssumeRole on exactly the new role, nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": pair.role_arn}],
    }


def pair_plan(hub: AccountHub, user: str, pair: Pair, region: str) -> Plan:
    """The plan; each step's calls go to its own account through that account's clients."""
    target_iam: IamGateway = hub.iam(pair.target, user)
    source_iam: IamGateway = hub.iam(pair.source, user)
    b, a = pair.target.account_id, pair.source.account_id
    steps = [
        Step(
            "create",
            f"Create role {pair.role_name} in account {pair.target.label}",
            pair.role_arn,
            target_iam.create_role,
            {
                "name": pair.role_name,
                "trust_policy": trust_policy(pair),
                "description": pair.description,
            },
            undo=Undo(
                f"Delete role {pair.role_name}", target_iam.delete_role, {"name": pair.role_name}
            ),
            account=b,
        )
    ]
    for n, arn in enumerate(pair.managed_policy_arns):
        steps.append(
            Step(
                f"attach-{n}",
                f"Attach {arn} to {pair.role_name}",
                pair.role_arn,
                target_iam.attach_role_policy,
                {"role_name": pair.role_name, "policy_arn": arn},
                depends_on=("create",),
                undo=Undo(
                    f"Detach {arn}",
                    target_iam.detach_role_policy,
                    {"role_name": pair.role_name, "policy_arn": arn},
                ),
                account=b,
            )
        )
    # A's role gets its permission last, once B's role and policies are in place.
    after_b = tuple(s.key for s in steps)
    allow = f"Allow {pair.source_role_name} in account {pair.source.label} to assume it"
    if pair.managed:
        # The policy alone grants nothing until attached, so it is made beside B's steps.
        policy = f"customer managed policy {pair.policy_name}"
        steps.append(
            Step(
                "policy",
                f"Create {policy} in account {pair.source.label}",
                pair.policy_arn,
                source_iam.create_policy,
                {
                    "name": pair.policy_name,
                    "document": assume_policy(pair),
                    "description": f"RoleDesk cross-account pair: lets {pair.source_role_arn} "
                    f"assume {pair.role_arn}",
                    "path": "/",
                },
                undo=Undo(
                    f"Delete policy {pair.policy_arn}",
                    source_iam.delete_policy,
                    {"arn": pair.policy_arn},
                ),
                account=a,
            )
        )
        steps.append(
            Step(
                "allow",
                f"{allow}: attach {pair.policy_arn}",
                pair.source_role_arn,
                source_iam.attach_role_policy,
                {"role_name": pair.source_role_name, "policy_arn": pair.policy_arn},
                depends_on=(*after_b, "policy"),
                undo=Undo(
                    f"Detach {pair.policy_arn}",
                    source_iam.detach_role_policy,
                    {"role_name": pair.source_role_name, "policy_arn": pair.policy_arn},
                ),
                account=a,
            )
        )
    else:
        steps.append(
            Step(
                "allow",
                allow,
                pair.source_role_arn,
                source_iam.put_role_policy,
                {
                    "role_name": pair.source_role_name,
                    "policy_name": pair.policy_name,
                    "document": assume_policy(pair),
                },
                depends_on=after_b,
                undo=Undo(
                    f"Delete inline policy {pair.policy_name}",
                    source_iam.delete_role_policy,
                    {"role_name": pair.source_role_name, "policy_name": pair.policy_name},
                ),
                account=a,
            )
        )
    return Plan(
        KIND,
        f"Let {pair.source_role_name} ({a}) use {pair.role_name} ({b})",
        tuple(steps),
        on_failure=UNDO,
        details={"region": region, "pair": details(pair)},
    )


def details(pair: Pair) -> dict[str, Any]:
    """What the done page needs, kept in the operation's start record."""
    return {
        "source_account": pair.source.account_id,
        "source_account_name": pair.source.name,
        "source_role_arn": pair.source_role_arn,
        "target_account": pair.target.account_id,
        "target_account_name": pair.target.name,
        "role_arn": pair.role_arn,
        "role_name": pair.role_name,
        "condition": pair.condition,
        "external_id": pair.external_id,
        "org_id": pair.org_id,
        "require_mfa": pair.require_mfa,
        "policy_name": pair.policy_name,
        "source_policy": pair.source_policy,
        "policy_arn": pair.policy_arn if pair.managed else "",
    }


_PROFILE_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def usage(recorded: dict[str, Any]) -> dict[str, str]:
    """The CLI command and ~/.aws/config profile that use the pair, from the start record.
    SOURCE_PROFILE stands for whatever profile holds account A's role credentials."""
    arn, session = recorded["role_arn"], "SESSION_NAME"
    command = [f"aws sts assume-role --role-arn {arn} --role-session-name {session}"]
    profile = [
        f"[profile {_PROFILE_UNSAFE.sub('-', recorded['role_name'])}-{recorded['target_account']}]",
        f"role_arn = {arn}",
        "source_profile = SOURCE_PROFILE",
    ]
    if recorded["condition"] == EXTERNAL_ID:
        command.append(f"--external-id {recorded['external_id']}")
        profile.append(f"external_id = {recorded['external_id']}")
    if recorded["require_mfa"]:
        command.append("--serial-number MFA_DEVICE_ARN --token-code CODE")
        profile.append("mfa_serial = MFA_DEVICE_ARN")
    return {"command": " \\\n  ".join(command), "profile": "\n".join(profile)}


def run_pair(
    engine: Engine, ctx: AuditContext, pair: Pair, plan: Plan, hub: AccountHub, user: str
) -> RunResult:
    """Run the pair's plan holding the case-insensitive name locks (app.shared.names) the
    wizard holds, per account: the new role's name in account B, and A's policy name (the
    inline policy's on A's role, or the customer managed policy's in A). Under them the
    names are checked again (the form's check cannot see a create another process makes at
    this instant): the exact name and the spelling RoleDesk last created (the shared claims,
    confirmed with GetRole) in B, any spelling of the inline policy on A's role, or the
    managed policy's ARN in A. A name taken refuses the run before any AWS change, recorded
    as the create (or allow, or policy) step's failure."""
    shared = engine.services.shared
    b, a = pair.target.account_id, pair.source.account_id
    roles = NameClaims(shared, b)
    # Each policy kind's names get their own lock space ("/" cannot occur in an account id
    # or a role name): inline policy names are unique per role, customer managed policy
    # names per account (both regardless of case).
    if pair.managed:
        policies = NameClaims(shared, f"{a}/managed-policies")
    else:
        policies = NameClaims(shared, f"{a}/{pair.source_role_name.lower()}/policies")
    with roles.held(pair.role_name), policies.held(pair.policy_name):
        refusal = _name_refusal(pair, roles, hub, user)
        if refusal is not None:
            step, error = refusal
            result = RunResult(
                plan,
                ctx.operation_id,
                {s.key: StepResult(s.key, s.label, NOT_STARTED) for s in plan.steps},
            )
            result.steps[step].status, result.steps[step].error = FAILED, error
            engine.close(ctx, plan, result, None, None)
            return result
        result = engine.run(ctx, plan)
        created = result.steps["create"]
        if created.error is None and created.status in (DONE, UNDONE, UNDO_FAILED):
            roles.claim(pair.role_name)
        return result


def _name_refusal(
    pair: Pair, roles: NameClaims, hub: AccountHub, user: str
) -> tuple[str, AwsError] | None:
    target_iam, source_iam = hub.iam(pair.target, user), hub.iam(pair.source, user)
    try:
        for name in dict.fromkeys([pair.role_name, roles.claimed(pair.role_name)]):
            if name is None:
                continue
            try:
                taken = target_iam.get_role(name).name
            except NotFound:
                continue
            return "create", AlreadyExists(
                "EntityAlreadyExists",
                f"A role named {taken} already exists in {pair.target.label}; role names "
                "are unique regardless of case.",
                operation="CreateRole",
            )
        if pair.managed:
            return managed_clash(pair, source_iam)
        return inline_clash(pair, source_iam)
    except AwsError as exc:
        return "create", exc


def inline_clash(pair: Pair, iam: IamGateway) -> tuple[str, AwsError] | None:
    """The refusal when A's role already has an inline policy of the pair's policy name, in
    any spelling (the run and the form both ask here): step "allow" would overwrite it."""
    held = iam.list_role_policy_names(pair.source_role_name)
    clash = next((n for n in held if n.lower() == pair.policy_name.lower()), None)
    if clash is None:
        return None
    return "allow", AlreadyExists(
        "EntityAlreadyExists",
        f"{pair.source_role_name} already has an inline policy {clash}.",
        operation="PutRolePolicy",
    )


def managed_policy_named(iam: IamGateway, name: str) -> str | None:
    """The ARN of the account's customer managed policy called `name`, on any path and in
    any case, or None (the form's check and the run's). IAM policy names are unique within an
    account and not distinguished by case (the CreatePolicy API reference, PolicyName), so
    CreatePolicy refuses the name while any such policy exists, not only one at the exact
    ARN. ListPolicies with Scope Local: the customer managed policies only, 100 a page."""
    wanted = name.lower()
    return next((p.arn for p in iam.list_policies("Local") if p.name.lower() == wanted), None)


def managed_clash(pair: Pair, source_iam: IamGateway) -> tuple[str, AwsError] | None:
    """A customer managed policy of the pair's policy name already in A: refused before any
    change (the form's check and the run's) rather than failing at CreatePolicy midway."""
    taken = managed_policy_named(source_iam, pair.policy_name)
    if taken is None:
        return None
    return "policy", AlreadyExists(
        "EntityAlreadyExists",
        f"{pair.source.label} already has a customer managed policy {taken}; policy names "
        "are unique in an account regardless of case and path.",
        operation="CreatePolicy",
    )
