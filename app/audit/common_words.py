"""Words too common to look up in PostgreSQL's word index, from the planner's statistics.

A term like `arn:aws:iam::123456789012:role/web` has words that nearly every event has (`aws`,
`iam`, the account id, `role`). Asking the GIN index for them too would make it read posting
lists covering most of the table, as the trigram index did for role names, although the rare
word (`web…`) alone narrows the search as far. ANALYZE records the most common words of
`audit_event_status.search_words` (of its settled partition: migration 0012) with their
frequencies (`pg_stats.most_common_elems`);
words found in more than `COMMON` of events are left out of the index query (`LIKE` still
checks the whole term). Read once per database and kept for `TTL` seconds.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from app.db import Database
from app.models import STATUS_SETTLED_PARTITION

COMMON = 0.01
TTL = 600.0

# On PostgreSQL the table is partitioned (migration 0012): autovacuum analyzes the settled
# partition, which holds nearly every event, and never the parent, whose row here is as old
# as the last manual ANALYZE; the parent's is read only when there is no partition's.
_STATS = text(
    "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
    "WHERE tablename IN (:settled, 'audit_event_status') "
    "AND attname = 'search_words' ORDER BY tablename = :settled DESC LIMIT 1"
).bindparams(settled=STATUS_SETTLED_PARTITION)
_lock = threading.Lock()
_cache: dict[str, tuple[float, frozenset[str]]] = {}


def common_words(db: Database) -> frozenset[str]:
    """The words in more than COMMON of events (empty before the first ANALYZE)."""
    key = db.engine.url.render_as_string(hide_password=True)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(key)
        if cached is not None and now - cached[0] < TTL:
            return cached[1]
    with db.sessions() as session:
        row = session.execute(_STATS).first()
    words: frozenset[str] = frozenset()
    if row is not None and row[0] is not None:
        words = frozenset(w for w, f in zip(row[0], row[1], strict=False) if f > COMMON)
    with _lock:
        _cache[key] = (now, words)
    return words
