"""What a role's page says right after RoleDesk changed the role.

A change ends with post/redirect/get to the role's page; the address carries the change's
operation id, and the page names what was applied, how many AWS calls it took and where its
audit record is, as the IAM console's "updated" banner does. Only a finished operation whose
every step succeeded is shown: an address with another id, or none, says nothing (the page
itself is the same), so a reload or a shared link is harmless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from app.db import Database
from app.operations import progress

OPERATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The role page's sections a change returns to (the notice links to the one it changed).
SECTIONS = frozenset({"summary", "permissions", "trust", "tags", "revoke"})
# The query parameters' shapes (empty allowed), checked before the page reads AWS.
APPLIED_PATTERN = rf"^({OPERATION_ID.pattern})?$"
SECTION_PATTERN = rf"^({'|'.join(sorted(SECTIONS))})?$"


@dataclass(frozen=True)
class Applied:
    operation_id: str
    title: str
    calls: int
    section: str | None


def applied_url(role_name: str, operation_id: str, section: str) -> str:
    """Where a change that succeeded sends the browser."""
    return f"/roles/{role_name}?{urlencode({'applied': operation_id, 'section': section})}"


def applied_change(db: Database, operation_id: str, section: str) -> Applied | None:
    """The notice for `operation_id` and `section`, already matched against APPLIED_PATTERN
    and SECTION_PATTERN by the role page's query checks (section may be empty)."""
    run = progress.load(db, operation_id)
    if run is None or not run.finished or any(s.status != "done" for s in run.steps):
        return None
    calls = sum(len(step.calls) for step in run.steps)
    return Applied(operation_id, run.title, calls, section or None)
