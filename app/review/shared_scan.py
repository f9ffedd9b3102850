"""The access review's account scan across processes (issue 16), in part.

Each process still scans the account itself (app.review.scan keeps its result in memory);
what is shared is RoleDesk's own role changes: a role changed through another process is
re-read and re-checked here too, from the roles list's change notice (app.roles.inventory
stores the role and writes the notice), so the review shows the change on every process,
not only on the one that made it. The re-read (GetRole and the role's policies) runs on a
thread of its own, never in the request that happened to catch up with the notice.

Not shared yet: the scan result itself (stored, read by one process, adopted by the others,
"Scan again" for all); see docs/scaling.md.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from app.review.scan import AccountScan
from app.roles.inventory import INVENTORY as ROLES
from app.shared.state import SharedState

NOTICE_ACTION = "iam:ChangedThroughAnotherProcess"  # what the scan is told happened


def follow_role_notices(scan: AccountScan, shared: SharedState, account_id: str) -> None:
    """Re-check each role that another process reports changed, if this scan holds it."""
    rereads = ThreadPoolExecutor(1, thread_name_prefix="scan-notices")

    def on_notice(key: str, item: str | None) -> None:
        if item is None or scan.result is None:
            return  # a reload of the roles list, or no scan here yet (it reads everything)
        data = shared.load_item(ROLES, key, item)
        # The stored row names the role as IAM spells it; a deleted role has none.
        name = json.loads(data)["name"] if data is not None else item
        target = f"arn:aws:iam::{account_id}:role/{name}"
        rereads.submit(scan.on_change, NOTICE_ACTION, target)

    shared.subscribe(ROLES, on_notice)
