"""Every AWS call RoleDesk can make, declared with the IAM actions it needs.

`docs/required-permissions.json` is generated from this registry (`roledesk permissions`),
and a test fails when the two drift apart, as Cloud Custodian does for its actions.

Calls that change AWS are declared with `@changes(...)`. They refuse to run unless the audited
path (`app.audit.audited`) has opened a guard for exactly that action, so nothing can change
AWS without an audit record written first.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class DeclaredCall:
    """One gateway method and the IAM actions it needs."""

    qualname: str
    action: str
    extra_actions: tuple[str, ...]
    mutating: bool
    sandbox_only: bool = False
    # Made only with the hub account's own credentials (listing the organization's accounts,
    # assuming the spoke role): part of the hub's policy, not of the spoke role's.
    hub_only: bool = False

    @property
    def actions(self) -> tuple[str, ...]:
        return (self.action, *self.extra_actions)


REGISTRY: dict[str, DeclaredCall] = {}

_open_guard: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "roledesk_audit_guard", default=None
)


class UnauditedChange(RuntimeError):
    """A call that changes AWS was made outside the audited path."""


@contextmanager
def audit_guard(action: str) -> Iterator[None]:
    """Allow one mutating call for `action`; opened only by the audited path."""
    token = _open_guard.set(action)
    try:
        yield
    finally:
        _open_guard.reset(token)


def _declare(
    action: str,
    extra: tuple[str, ...],
    mutating: bool,
    sandbox_only: bool = False,
    hub_only: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        REGISTRY[fn.__qualname__] = DeclaredCall(
            fn.__qualname__, action, extra, mutating, sandbox_only, hub_only
        )
        if not mutating:
            return fn

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            opened = _open_guard.get()
            if opened != action:
                raise UnauditedChange(
                    f"{action} called outside the audited path (guard open for {opened!r})"
                )
            return fn(*args, **kwargs)

        return guarded

    return decorator


def reads(action: str, *extra: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a read-only call and the IAM action(s) it needs."""
    return _declare(action, extra, mutating=False)


def changes(action: str, *extra: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a call that changes AWS; it runs only inside the audited path."""
    return _declare(action, extra, mutating=True)


def hub_reads(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a read-only call made only in the hub account (app.accounts)."""
    return _declare(action, (), mutating=False, hub_only=True)


def sandbox_changes(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a change used only to seed the sandbox (never needed on real AWS)."""
    return _declare(action, (), mutating=True, sandbox_only=True)


def action_of(fn: Callable[..., object]) -> str:
    """The declared action of a gateway method (bound or not)."""
    qualname = getattr(getattr(fn, "__func__", fn), "__qualname__", "")
    declared = REGISTRY.get(qualname)
    if declared is None:
        raise KeyError(f"{qualname} is not a declared AWS call")
    return declared.action


def required_policy() -> dict[str, object]:
    """The IAM policy RoleDesk needs: every declared action, grouped read/write."""
    calls = [c for c in REGISTRY.values() if not c.sandbox_only and not c.hub_only]
    read = sorted({a for c in calls if not c.mutating for a in c.actions})
    write = sorted({a for c in calls if c.mutating for a in c.actions})
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "RoleDeskRead", "Effect": "Allow", "Action": read, "Resource": "*"},
            {"Sid": "RoleDeskWrite", "Effect": "Allow", "Action": write, "Resource": "*"},
        ],
    }


def hub_statements(member_role_name: str) -> list[dict[str, object]]:
    """What the hub account's credentials need on top of `required_policy()` to reach the
    member accounts: the hub-only reads, and sts:AssumeRole on the spoke role, by name, in
    any account (the spoke role's trust decides which hub may use it)."""
    assume = "sts:AssumeRole"
    reads = sorted({a for c in REGISTRY.values() if c.hub_only for a in c.actions} - {assume})
    return [
        {"Sid": "RoleDeskOrganization", "Effect": "Allow", "Action": reads, "Resource": "*"},
        {
            "Sid": "RoleDeskAssumeSpokeRole",
            "Effect": "Allow",
            "Action": [assume],
            "Resource": f"arn:aws:iam::*:role/{member_role_name}",
        },
    ]
