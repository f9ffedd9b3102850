"""The create run: CreateRole, AttachRolePolicy (each), PutRolePolicy, and for EC2 service
roles an instance profile of the same name with the role added, as the console does.

Every call goes through the audited path with ONE AuditContext, so the run shares one
operation id in the ledger. If a step fails, what this run created is undone in reverse order
(also audited), and the failure names the step and AWS's error.

Before anything is created, `preflight` checks what moto does not enforce but AWS does: the
name is unique case-insensitively, and the quotas from GetAccountSummary.

IAM is eventually consistent (security.md): on real AWS, NoSuchEntity right after CreateRole
and "Invalid principal in policy" are retried with backoff for up to about two minutes. The
sleep and the clock are injected so tests never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.audit.audited import AuditContext, AuditedSequence, Change, jsonable
from app.aws.errors import AwsError, InvalidInput, NotFound
from app.policy import size_of
from app.services import Services
from app.wizard.steps import CreatePlan, Quotas

RETRY_FOR_SECONDS = 120.0


def is_propagation_error(exc: AwsError, step: str) -> bool:
    """Errors that mean "IAM has not caught up yet", never a real refusal."""
    if isinstance(exc, NotFound):
        return step != "create_role"  # the role may not be visible yet to the next call
    return isinstance(exc, InvalidInput) and "invalid principal" in exc.message.lower()


@dataclass
class Step:
    key: str
    label: str
    target: str
    call: Callable[..., Any]
    kwargs: dict[str, Any]
    undo: tuple[str, Callable[..., Any], dict[str, Any]] | None
    record: dict[str, Any] | None = None  # more to keep in the audit event (policy review)


@dataclass
class CreateOutcome:
    role_arn: str | None
    failed_step: str | None = None
    error: AwsError | None = None
    done: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    rollback_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def failure_record(self) -> dict[str, Any]:
        assert self.error is not None
        return {
            "step": self.failed_step,
            "code": self.error.code,
            "message": self.error.message,
            "plain": self.error.plain,
            "request_id": self.error.request_id,
            "operation": self.error.operation,
            "done": self.done,
            "rolled_back": self.rolled_back,
            "rollback_errors": self.rollback_errors,
        }


def preflight(services: Services, plan: CreatePlan, quotas: Quotas) -> dict[str, str]:
    """Field errors found by asking AWS (reads only): name taken (role, or for EC2 roles the
    instance profile), quotas exceeded."""
    errors: dict[str, str] = {}
    taken = existing_role_name(services, plan.name)
    if taken is not None:
        errors["name"] = (
            f"A role named {taken} already exists; role names are unique regardless "
            "of case. Choose another name."
        )
    if plan.instance_profile and "name" not in errors:
        try:
            services.iam.get_instance_profile(plan.name)
        except NotFound:
            pass
        else:
            errors["name"] = (
                f"An instance profile named {plan.name} already exists; an EC2 role gets an "
                "instance profile of its own name. Choose another name."
            )
    if len(plan.policy_arns) > quotas.attached_policies:
        errors["policies"] = (
            f"{len(plan.policy_arns)} managed policies chosen; the account allows "
            f"{quotas.attached_policies} per role."
        )
    if size_of(plan.trust_policy) > quotas.trust_policy_size:
        errors["trust"] = f"The trust policy exceeds {quotas.trust_policy_size} characters."
    if plan.inline_document and size_of(plan.inline_document) > quotas.inline_policy_size:
        errors["inline_policy"] = (
            f"The inline policy exceeds {quotas.inline_policy_size} characters."
        )
    return errors


def existing_role_name(services: Services, name: str) -> str | None:
    """The name of an existing role that `name` would clash with, or None.

    GetRole answers for the exact name; other spellings of it (IAM names are unique
    regardless of case) are looked up in the in-memory roles list, and confirmed with GetRole
    so a role deleted since the list was loaded does not block its name. Listing every role
    here instead (all pages of ListRoles) cost one call per 1,000 roles on each create. A
    role made outside RoleDesk since the list was loaded, under another spelling, is not
    seen here; CreateRole then fails with EntityAlreadyExists and nothing is created.
    """
    iam = services.iam
    try:
        return iam.get_role(name).name
    except NotFound:
        pass
    row = services.inventory.find(name)
    if row is None or row.name == name:
        return None
    try:
        return iam.get_role(row.name).name
    except NotFound:
        return None


def plan_steps(services: Services, plan: CreatePlan) -> list[Step]:
    iam = services.iam
    account = services.identity.account
    role_arn = plan.role_arn(account)
    name = plan.name
    steps = [
        Step(
            "create_role",
            "Create the role",
            role_arn,
            iam.create_role,
            {
                "name": name,
                "trust_policy": plan.trust_policy,
                "path": plan.path,
                "description": plan.description,
                "max_session_duration": plan.max_session_duration,
                "permissions_boundary_arn": plan.boundary_arn,
                "tags": plan.tags,
            },
            ("Delete the role", iam.delete_role, {"name": name}),
        ),
    ]
    for arn in plan.policy_arns:
        steps.append(
            Step(
                f"attach:{arn}",
                f"Attach {arn.rsplit('/', 1)[-1]}",
                role_arn,
                iam.attach_role_policy,
                {"role_name": name, "policy_arn": arn},
                (
                    f"Detach {arn.rsplit('/', 1)[-1]}",
                    iam.detach_role_policy,
                    {"role_name": name, "policy_arn": arn},
                ),
            )
        )
    if plan.inline_name and plan.inline_document is not None:
        steps.append(
            Step(
                "inline",
                f"Add inline policy {plan.inline_name}",
                role_arn,
                iam.put_role_policy,
                {
                    "role_name": name,
                    "policy_name": plan.inline_name,
                    "document": plan.inline_document,
                },
                (
                    f"Delete inline policy {plan.inline_name}",
                    iam.delete_role_policy,
                    {"role_name": name, "policy_name": plan.inline_name},
                ),
            )
        )
    if plan.instance_profile:
        profile_arn = plan.profile_arn(account)
        steps += [
            Step(
                "create_profile",
                f"Create instance profile {name}",
                profile_arn,
                iam.create_instance_profile,
                {"name": name, "path": plan.path},
                ("Delete the instance profile", iam.delete_instance_profile, {"name": name}),
            ),
            Step(
                "add_to_profile",
                "Add the role to the instance profile",
                profile_arn,
                iam.add_role_to_instance_profile,
                {"profile_name": name, "role_name": name},
                (
                    "Remove the role from the instance profile",
                    iam.remove_role_from_instance_profile,
                    {"profile_name": name, "role_name": name},
                ),
            ),
        ]
    return steps


class RoleCreator:
    def __init__(
        self,
        services: Services,
        *,
        retry_propagation: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._services = services
        # Retries make sense only on real AWS: the sandbox is immediately consistent.
        self._retry = (
            (not services.settings.is_sandbox) if retry_propagation is None else (retry_propagation)
        )
        self._sleep = sleep
        self._clock = clock

    def run(
        self, plan: CreatePlan, ctx: AuditContext, *, review: dict[str, Any] | None = None
    ) -> CreateOutcome:
        """All steps under one operation id; on failure, undo in reverse order. One audited
        sequence: each outcome is committed with the next call's intent. `review` (the policy
        findings and their acknowledgements) is kept in the CreateRole event."""
        role_arn = plan.role_arn(self._services.identity.account)
        outcome = CreateOutcome(role_arn=role_arn)
        completed: list[Step] = []
        steps = plan_steps(self._services, plan)
        if review is not None:
            steps[0].record = {"policy_review": review}
        with self._services.audited.sequence(ctx) as calls:
            for step in steps:
                try:
                    self._call(calls, step)
                except AwsError as exc:
                    outcome.failed_step, outcome.error, outcome.role_arn = step.label, exc, None
                    self._roll_back(calls, completed, outcome)
                    return outcome
                completed.append(step)
                outcome.done.append(step.label)
        return outcome

    def _call(self, calls: AuditedSequence, step: Step) -> Any:
        deadline = self._clock() + RETRY_FOR_SECONDS
        delay = 1.0
        while True:
            try:
                params = {**jsonable(step.kwargs), **step.record} if step.record else None
                return calls.call(Change(step.target, params), step.call, **step.kwargs)
            except AwsError as exc:
                retry = self._retry and is_propagation_error(exc, step.key)
                if not retry or self._clock() + delay > deadline:
                    raise
                self._sleep(delay)
                delay = min(delay * 2, 15.0)

    def _roll_back(
        self, calls: AuditedSequence, completed: list[Step], outcome: CreateOutcome
    ) -> None:
        outcome.rolled_back, outcome.rollback_errors = undo_steps(calls, completed)


def undo_steps(
    calls: AuditedSequence, steps: list[Step], *, skip_missing: bool = False
) -> tuple[list[str], list[str]]:
    """Undo `steps` in reverse order, each through the audited path; returns the labels of
    what was undone and the errors of what could not be. With `skip_missing`, an undo that
    finds nothing (NotFound: that call had not happened, or was already undone) is neither."""
    undone: list[str] = []
    errors: list[str] = []
    for step in reversed(steps):
        if step.undo is None:
            continue
        label, call, kwargs = step.undo
        try:
            calls.call(Change(step.target), call, **kwargs)
            undone.append(label)
        except AwsError as exc:
            if not (skip_missing and isinstance(exc, NotFound)):
                errors.append(f"{label}: {exc.code} {exc.message}")
    return undone, errors
