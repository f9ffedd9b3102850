"""A plan: the AWS calls of one change, their order and dependencies, and their undo.

A plan is data. It is shown for review before it runs (`Plan.review`), recorded in the audit
ledger when it starts (so its progress page and reconciliation can be rebuilt from the ledger
alone), and run by `app.operations.engine`. A new kind of change is a new function that
returns a Plan; it never needs a runner of its own.

Failure rules, chosen per plan:
- `undo` (create, edits, EC2 role changes): a failed step undoes the completed steps of its
  own `unit`, newest first, and nothing else of that unit runs; other units go on. A plan of
  one unit is all or nothing.
- `stop` (delete): a failed step stops its unit (the whole run, for a plan of one unit) and
  nothing is undone; a later run of a new plan built from what AWS holds then continues from
  where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.audit.audited import jsonable
from app.aws.calls import action_of
from app.aws.errors import AwsError

UNDO = "undo"
STOP = "stop"

Retryable = Callable[[AwsError], bool]


@dataclass(frozen=True)
class Undo:
    label: str
    call: Callable[..., Any]
    kwargs: dict[str, Any]
    retry: Retryable | None = None


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    target: str
    call: Callable[..., Any]  # a declared `@changes` gateway method
    kwargs: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    undo: Undo | None = None
    unit: str = ""
    before: dict[str, Any] | None = None
    region: str | None = None
    retry: Retryable | None = None
    after: dict[str, Any] | None = None  # with `before`: the audit event shows the diff
    note: dict[str, Any] | None = None  # more for the step's audit event (a policy review)
    account: str | None = None  # the member account the call goes to (None: the hub's)

    @property
    def action(self) -> str:
        return action_of(self.call)

    def record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "action": self.action,
            "target": self.target,
            "depends_on": list(self.depends_on),
            "unit": self.unit,
            "undo": self.undo.label if self.undo else None,
            **({"account": self.account} if self.account else {}),
            "params": jsonable(self.kwargs),
        }


class PlanError(ValueError):
    """A plan that cannot run: duplicate keys, unknown or circular dependencies."""


@dataclass(frozen=True)
class Plan:
    kind: str  # what sort of change: create-role, edit-trust, delete-role, instance-roles...
    title: str
    steps: tuple[Step, ...]
    on_failure: str = UNDO
    details: dict[str, Any] = field(default_factory=dict)  # what the plan's pages need
    start_action: str = "roledesk:StartOperation"
    finish_action: str = "roledesk:FinishOperation"

    def __post_init__(self) -> None:
        keys = [s.key for s in self.steps]
        if len(set(keys)) != len(keys):
            raise PlanError(f"duplicate step keys in {self.kind}")
        known = set(keys)
        for step in self.steps:
            missing = [d for d in step.depends_on if d not in known]
            if missing:
                raise PlanError(f"step {step.key} depends on unknown steps {missing}")
        self.waves()  # raises on a cycle

    def step(self, key: str) -> Step:
        return next(s for s in self.steps if s.key == key)

    def waited_on(self, step: Step) -> bool:
        """Whether another step depends on `step`."""
        return any(step.key in s.depends_on for s in self.steps)

    def waves(self) -> list[list[Step]]:
        """Steps grouped so each group depends only on earlier groups: the steps of one
        group could run side by side. Plan order is kept within a group."""
        done: set[str] = set()
        left = list(self.steps)
        waves: list[list[Step]] = []
        while left:
            ready = [s for s in left if all(d in done for d in s.depends_on)]
            if not ready:
                raise PlanError(f"circular dependencies among {[s.key for s in left]}")
            waves.append(ready)
            done.update(s.key for s in ready)
            left = [s for s in left if s.key not in done]
        return waves

    def critical_path(self) -> int:
        """The longest chain of steps that must follow one another."""
        return len(self.waves())

    def record(self) -> dict[str, Any]:
        """The plan as JSON for the start entry in the ledger."""
        return {
            **self.details,
            "engine": {
                "kind": self.kind,
                "title": self.title,
                "on_failure": self.on_failure,
                "steps": [s.record() for s in self.steps],
            },
        }

    def review(self) -> list[str]:
        """One line per call, in the order they can run: what the review page lists."""
        return [step.label for wave in self.waves() for step in wave]
