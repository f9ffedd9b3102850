"""A separate writer process for the concurrency tests: appends COUNT entries to the ledger at
URL, one transaction each, printing each committed seq (so a test knows what was committed
before it killed the process)."""

from __future__ import annotations

import sys

from app.audit.log import AuditLog, NewEntry
from app.db import Database


def main(url: str, count: int, tag: str) -> None:
    db = Database(url)
    log = AuditLog(db)
    for i in range(count):
        entry = log.append(
            NewEntry(
                kind="record",
                action="roledesk:Test",
                actor=tag,
                outcome="succeeded",
                target=f"{tag}-{i}",
                params={"i": i},
            )
        )
        print(entry.seq, flush=True)
    db.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
