"""The create run: CreateRole, AttachRolePolicy (each), PutRolePolicy, and for EC2 service
roles an instance profile of the same name with the role added, as the console does.

It is a plan (`create_plan`) run by the operations engine (app.operations) under ONE
AuditContext, so the run shares one operation id in the ledger. If a step fails, what this
run created is undone in reverse order (also audited), and the failure names the step and
AWS's error. If the ledger cannot be written, the run stops and the engine's settle loop
undoes it once the database answers.

Calls that do not depend on each other run side by side (`CREATE_WORKERS`): the name checks
before the run; after CreateRole, the attaches, the inline policy and CreateInstanceProfile;
then AddRoleToInstanceProfile. On real AWS a run therefore waits about four call-times
(checks, role, profile, role into profile) instead of one per call. Each call is still
audited on its own, its intent durable before it is sent.

Before anything is created, `start_preflight` checks what moto does not enforce but AWS does: the
name is unique case-insensitively, and the quotas from GetAccountSummary.

IAM is eventually consistent (security.md): on real AWS, NoSuchEntity right after CreateRole
and "Invalid principal in policy" are retried with backoff for up to about two minutes. The
sleep and the clock are injected so tests never wait.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app.audit.audited import AuditContext
from app.aws.errors import AlreadyExists, AwsError, InvalidInput, NotFound
from app.operations.engine import DONE, UNDO_FAILED, UNDONE, Engine, RunResult
from app.operations.plan import Plan, Step, Undo
from app.operations.retry import RetryPolicy
from app.policy import size_of
from app.services import Services
from app.shared.names import NameClaims
from app.wizard.steps import CreatePlan, Quotas

RETRY_FOR_SECONDS = 120.0
log = logging.getLogger(__name__)


def is_propagation_error(exc: AwsError, step: str) -> bool:
    """Errors that mean "IAM has not caught up yet", never a real refusal."""
    if isinstance(exc, NotFound):
        return step != "create_role"  # the role may not be visible yet to the next call
    return isinstance(exc, InvalidInput) and "invalid principal" in exc.message.lower()


@dataclass
class CreateOutcome:
    role_arn: str | None
    failed_step: str | None = None
    error: AwsError | None = None
    done: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    rollback_errors: list[str] = field(default_factory=list)
    ledger_fault: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.ledger_fault is None

    def failure_record(self) -> dict[str, Any]:
        if self.error is None:
            return {
                "step": "Recording the run in the audit history",
                "code": "AuditLedgerUnavailable",
                "message": self.ledger_fault,
                "plain": "The database stopped answering during the run, so RoleDesk stopped "
                "before its next AWS call (nothing changes AWS without an audit record) and "
                "undid what the run had done once the database answered again.",
                "request_id": None,
                "operation": None,
                "done": self.done,
                "rolled_back": self.rolled_back,
                "rollback_errors": self.rollback_errors,
            }
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


# Threads for the side-by-side name checks of preflight, kept between requests.
_NAME_CHECKS = ThreadPoolExecutor(4, thread_name_prefix="name-check")


def start_preflight(
    services: Services, plan: CreatePlan, quotas: Quotas
) -> Callable[[], dict[str, str]]:
    """The checks before a create that ask AWS (reads only): name taken (role, or for EC2
    roles the instance profile), quotas exceeded. Sends the name checks and returns what
    waits for their answers (the field errors), so the caller's own work before the create
    (the policy review) runs while AWS answers: on real AWS each check is 50-300 ms, during
    which RoleDesk used to wait and only then do its own few milliseconds (issue 15: own
    time off the critical path)."""
    # The two name checks do not depend on each other: side by side, one round trip, on a
    # long-lived pool (starting one, two new threads, on every create cost more than the
    # rest of the check: issue 13). The AWS clients are chosen by `services`, not by the
    # thread; the context is copied so the calls are made as from the request all the same.
    role_check = _NAME_CHECKS.submit(
        contextvars.copy_context().run, exact_role_name, services, plan.name
    )
    profile_check = (
        _NAME_CHECKS.submit(contextvars.copy_context().run, profile_exists, services, plan.name)
        if plan.instance_profile
        else None
    )

    def answers() -> dict[str, str]:
        # Other spellings, from the roles list and the name claims (local, no AWS call unless
        # one is found), looked up while the calls are in flight; they matter only when the
        # exact name is free.
        other = other_spelling_taken(services, plan.name)
        taken = role_check.result() or other
        profile_taken = profile_check is not None and profile_check.result()
        errors: dict[str, str] = {}
        if taken is not None:
            errors["name"] = (
                f"A role named {taken} already exists; role names are unique regardless "
                "of case. Choose another name."
            )
        elif profile_taken:
            errors["name"] = (
                f"An instance profile named {plan.name} already exists; an EC2 role gets an "
                "instance profile of its own name. Choose another name."
            )
        return {**errors, **_quota_errors(plan, quotas)}

    return answers


def _quota_errors(plan: CreatePlan, quotas: Quotas) -> dict[str, str]:
    errors: dict[str, str] = {}
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


def profile_exists(services: Services, name: str) -> bool:
    try:
        services.iam.get_instance_profile(name)
    except NotFound:
        return False
    return True


def existing_role_name(services: Services, name: str) -> str | None:
    """The name of an existing role that `name` would clash with, or None.

    GetRole answers for the exact name; other spellings of it (IAM names are unique
    regardless of case) are looked up in the in-memory roles list, and confirmed with GetRole
    so a role deleted since the list was loaded does not block its name. Listing every role
    here instead (all pages of ListRoles) cost one call per 1,000 roles on each create. A
    role made outside RoleDesk since the list was loaded, under another spelling, is not
    seen here; CreateRole then fails with EntityAlreadyExists and nothing is created.

    The spelling RoleDesk created through any process is also looked up in the shared name
    claims (app.shared.names): the create run repeats this check holding the name's lock,
    so two processes creating `App` and `app` at once cannot both pass it.
    """
    return exact_role_name(services, name) or other_spelling_taken(services, name)


def exact_role_name(services: Services, name: str) -> str | None:
    """The role's name as AWS has it when GetRole finds `name`, else None."""
    try:
        return services.iam.get_role(name).name
    except NotFound:
        return None


def other_spelling_taken(services: Services, name: str) -> str | None:
    """An existing role named like `name` in another spelling (from the roles list and the
    shared name claims, confirmed with GetRole), or None. No AWS call unless one is found:
    the exact spelling is refused by CreateRole itself."""
    row = services.inventory.find(name)
    claimed = name_claims(services).claimed(name)
    return confirmed(services, [n for n in (row.name if row else None, claimed) if n != name])


def confirmed(services: Services, names: list[str | None]) -> str | None:
    """The first of these role names that GetRole still finds (each asked once)."""
    for name in dict.fromkeys(n for n in names if n is not None):
        try:
            return services.iam.get_role(name).name
        except NotFound:
            continue
    return None


def name_claims(services: Services) -> NameClaims:
    return NameClaims(services.shared, services.identity.account)


def name_taken_error(taken: str) -> AlreadyExists:
    """What the run reports when the check under the name's lock finds the name taken: the
    words and code IAM uses, with no request id (RoleDesk refused before calling AWS)."""
    return AlreadyExists(
        "EntityAlreadyExists",
        f"A role named {taken} already exists; role names are unique regardless of case.",
        operation="CreateRole",
    )


def plan_steps(services: Services, plan: CreatePlan) -> list[Step]:
    """The create's calls: the role first; its policies and (EC2) its instance profile depend
    on it; the role joins the profile once both exist. One unit: all or nothing."""
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
            undo=Undo("Delete the role", iam.delete_role, {"name": name}),
        ),
    ]
    after_role = ("create_role",)
    for arn in plan.policy_arns:
        short = arn.rsplit("/", 1)[-1]
        steps.append(
            Step(
                f"attach:{arn}",
                f"Attach {short}",
                role_arn,
                iam.attach_role_policy,
                {"role_name": name, "policy_arn": arn},
                after_role,
                Undo(
                    f"Detach {short}",
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
                after_role,
                Undo(
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
                # After the role: a name already taken stops the run before the profile.
                after_role,
                Undo("Delete the instance profile", iam.delete_instance_profile, {"name": name}),
            ),
            Step(
                "add_to_profile",
                "Add the role to the instance profile",
                profile_arn,
                iam.add_role_to_instance_profile,
                {"profile_name": name, "role_name": name},
                ("create_role", "create_profile"),
                Undo(
                    "Remove the role from the instance profile",
                    iam.remove_role_from_instance_profile,
                    {"profile_name": name, "role_name": name},
                ),
            ),
        ]
    return steps


def _propagation_in(key: str, exc: AwsError) -> bool:
    return is_propagation_error(exc, key)


CREATE_KIND = "create-role"
# Steps in flight at once: after CreateRole, up to 10 attaches (IAM's default
# quota is 10 managed policies per role, at most 20), the inline policy and the instance
# profile. Eight at a time keeps a burst well under IAM's request rate limits; botocore's
# standard retry mode backs off if AWS throttles anyway.
CREATE_WORKERS = 8
DID_RUN = (DONE, UNDONE, UNDO_FAILED)


def create_plan(
    services: Services,
    plan: CreatePlan,
    *,
    retry: bool = False,
    review: dict[str, Any] | None = None,
) -> Plan:
    """The create run as a plan. `review` (the policy findings and their acknowledgements,
    issue 10) is kept in the CreateRole step's audit event."""
    steps = plan_steps(services, plan)
    if retry:  # IAM has not caught up yet: retried with backoff (real AWS only)
        steps = [replace(s, retry=functools.partial(_propagation_in, s.key)) for s in steps]
    if review is not None:
        steps[0] = replace(steps[0], note={"policy_review": review})
    return Plan(
        CREATE_KIND,
        f"Create role {plan.name}",
        tuple(steps),
        details={"role": plan.name, "instance_profile": plan.instance_profile},
    )


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
        self,
        plan: CreatePlan,
        ctx: AuditContext,
        finish: Callable[[CreateOutcome], None] | None = None,
        *,
        review: dict[str, Any] | None = None,
    ) -> CreateOutcome:
        """Run the create plan through the engine; on failure it is undone in reverse order.
        `finish` gets the outcome once the run is settled: at once, or after a ledger fault
        once the settle loop has undone the run."""
        engine = Engine(
            self._services,
            workers=CREATE_WORKERS,
            retry=RetryPolicy(
                budget_seconds=RETRY_FOR_SECONDS,
                first_delay=1.0,
                sleep=self._sleep,
                clock=self._clock,
            ),
        )
        operation = create_plan(self._services, plan, retry=self._retry, review=review)
        role_arn = plan.role_arn(self._services.identity.account)

        def settled(result: RunResult) -> None:
            if finish is not None:
                finish(outcome_of(result, role_arn))

        claims = name_claims(self._services)
        with ExitStack() as held:
            # Entered first, so left last: after the name's lock is let go (app.review.scan).
            held.enter_context(self._services.access_scan.deferred())
            # The name (any spelling) is checked again, and created, by one run at a time
            # in every process: the check before the run (preflight) cannot see a create
            # that another process is making at this instant. The exact spelling and the
            # roles list were checked before the run (and CreateRole refuses the exact one);
            # what another process created since is claimed in the database.
            try:
                holding = held.enter_context(claims.held(plan.name))
                taken = confirmed(self._services, [holding.claimed])
            except SQLAlchemyError as exc:  # nothing was called: the ledger could not be
                return self._refused(finish, ledger_fault=f"the database did not answer: {exc}")
            except AwsError as exc:  # confirming a claimed spelling with GetRole failed
                return self._refused(finish, error=exc)
            if taken is not None and taken != plan.name:
                return self._refused(finish, error=name_taken_error(taken))
            # The start record goes out with CreateRole's intent: one commit.
            result = engine.run(ctx, operation, finish=settled, start=True)
            created = result.steps.get("create_role")
            if created is not None and created.error is None and created.status in DID_RUN:
                # Written as the name's lock is let go, in the same transaction; if that
                # fails, the roles list still names the role for the next check.
                holding.claim(plan.name)
        return outcome_of(result, role_arn)

    @staticmethod
    def _refused(
        finish: Callable[[CreateOutcome], None] | None,
        *,
        error: AwsError | None = None,
        ledger_fault: str | None = None,
    ) -> CreateOutcome:
        """The run stopped before any AWS call."""
        outcome = CreateOutcome(
            role_arn=None,
            failed_step="Create the role" if error is not None else None,
            error=error,
            ledger_fault=ledger_fault,
        )
        if finish is not None:
            finish(outcome)
        return outcome


def outcome_of(result: RunResult, role_arn: str) -> CreateOutcome:
    outcome = CreateOutcome(role_arn=role_arn if result.ok else None)
    # Every step whose call succeeded, whether or not it was undone afterwards.
    outcome.done = [
        r.label for r in result.steps.values() if r.error is None and r.status in DID_RUN
    ]
    failed = result.first_error
    if failed is not None:
        outcome.failed_step, outcome.error = failed
    outcome.rolled_back = list(result.undone_order)
    outcome.rollback_errors = list(result.undo_errors)
    outcome.ledger_fault = result.ledger_fault
    return outcome
