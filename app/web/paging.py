"""Page numbers for in-memory lists (roles, policies, instances): one rule for all three."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def paged(items: Sequence[T], page: int, per_page: int) -> tuple[list[T], int, int]:
    """(the items on `page`, that page clamped to 1..pages, pages); an empty list is one
    page, so a page number in a stale link still lands somewhere."""
    pages = max(1, -(-len(items) // per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return list(items[start : start + per_page]), page, pages
