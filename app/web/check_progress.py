"""Progress pages without JavaScript (issue 13).

With JavaScript, htmx polls a progress page's live area. Without it, a page that reloads
itself on a timer (`<meta http-equiv="refresh">`) is what WCAG 2.2.1 forbids: it moves and
re-reads the page under the person at a pace they did not choose (axe-core: critical
`meta-refresh`). So a progress page offers a "Check progress" link instead, to itself with
`?wait=1`; that request holds for at most WAIT_SECONDS until the work's state changes or it
finishes, then renders the page. One click gives news without the person clicking again and
again, and a person who clicks in a loop makes at most one request per few seconds.

Each page says what counts as news (`state`) and what counts as finished, and how often it
may look (`every`): a look that asks AWS (the instances' association states, the Access
Advisor job) looks no more often than the JavaScript page's poll does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from fastapi import Request

from app.web.templating import is_htmx

T = TypeVar("T")

WAIT_SECONDS = 5.0  # at most; a browser's and a proxy's patience are far longer
EVERY_SECONDS = 0.25  # a look that reads only the database or memory


def wants_wait(request: Request) -> bool:
    """The "Check progress" link's request (htmx polls never wait: they come every second)."""
    return request.query_params.get("wait") == "1" and not is_htmx(request)


def wait_for_news(
    look: Callable[[], T],
    state: Callable[[T], Hashable],
    finished: Callable[[T], bool],
    *,
    every: float = EVERY_SECONDS,
    at_most: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Look until the state differs from the first look's, or the work has finished, or
    `at_most` seconds (WAIT_SECONDS) have passed; the last look."""
    current = look()
    if finished(current):
        return current
    first = state(current)
    deadline = clock() + (WAIT_SECONDS if at_most is None else at_most)
    while (left := deadline - clock()) > 0:
        sleep(min(every, left))
        current = look()
        if finished(current) or state(current) != first:
            break
    return current
