"""The instances pages' inputs, checked before any AWS call.

Query strings are bounded so no input can fail the page; posted forms collect errors per
field so the page is re-rendered with each message beside its field (422).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.instances.listing import INSTANCE_STATES, NO_ROLE, InstancesQuery
from app.instances.service import ATTACH, DETACH, MAX_INSTANCES

INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
CHOICE = re.compile(r"^(profile:[\w+=,.@-]{1,128}|role:[\w+=,.@-]{1,64})$")
CONFIRM_WORD = "Detach"


def clean_query(
    region: str, name: str = "", state: str = "", role: str = "", page: int = 1
) -> InstancesQuery:
    """Bounded filters: unknown states and malformed role names are ignored."""
    return InstancesQuery(
        region=region,
        name=name.strip()[:64],
        state=state if state in INSTANCE_STATES else "",
        role=role if role == NO_ROLE or ROLE_NAME.match(role) else "",
        page=max(1, min(page, 100_000)),
    )


def valid_operation_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _one(form: Mapping[str, Any], key: str, limit: int = 200) -> str:
    value = form.get(key, "")
    return value[:limit] if isinstance(value, str) else ""


@dataclass
class ChangeForm:
    """A posted attach/detach request (the review step and the apply step share it)."""

    action: str
    region: str
    instance_ids: list[str]
    choice: str
    confirm: str
    query: InstancesQuery
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, form: Any, *, regions: list[str], default_region: str, choices: set[str]
    ) -> ChangeForm:
        """`form` is Starlette's FormData (getlist for the checkboxes)."""
        errors: dict[str, str] = {}
        region = _one(form, "region", 32) or default_region
        if region not in regions:
            errors["region"] = f"Unknown region {region!r}."
            region = default_region
        action = _one(form, "action", 16)
        if action not in (ATTACH, DETACH):
            errors["action"] = "Choose Attach role or Detach role."
        raw_ids = [v for v in form.getlist("instance_id") if isinstance(v, str)]
        ids = list(dict.fromkeys(v.strip() for v in raw_ids if v.strip()))
        if not ids:
            errors["instance_id"] = "Select at least one instance."
        elif len(ids) > MAX_INSTANCES:
            errors["instance_id"] = (
                f"Select at most {MAX_INSTANCES} instances at once ({len(ids)} selected)."
            )
        elif bad := [v for v in ids if not INSTANCE_ID.match(v)]:
            errors["instance_id"] = f"Not an instance id: {bad[0][:40]!r}."
        choice = _one(form, "choice", 140)
        if action == ATTACH:
            if not choice:
                errors["choice"] = "Choose the role to attach."
            elif not CHOICE.match(choice) or choice not in choices:
                errors["choice"] = (
                    "That role cannot be attached to EC2 instances: it is in no instance "
                    "profile and does not trust ec2.amazonaws.com (or it no longer exists)."
                )
        query = clean_query(
            region, _one(form, "name", 64), _one(form, "state", 32), _one(form, "role", 64)
        )
        return cls(
            action,
            region,
            ids[: MAX_INSTANCES * 2],
            choice,
            _one(form, "confirm", 32),
            query,
            errors,
        )

    def check_confirmation(self) -> None:
        if self.action == DETACH and self.confirm.strip() != CONFIRM_WORD:
            self.errors["confirm"] = f"Type {CONFIRM_WORD} to confirm."
