"""The history page's query string, parsed and bounded; errors are shown beside the fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from app.audit.query import OUTCOMES, AuditFilters
from app.web.params import ascii_int

MAX_TEXT = 200
TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
FIELDS = ("actor", "action", "outcome", "target", "since", "until", "q", "account")
ACCOUNT_ID = re.compile(r"\d{12}")


@dataclass
class AuditForm:
    """The raw values (echoed back into the form) and what they mean."""

    values: dict[str, str]
    filters: AuditFilters
    errors: dict[str, str] = field(default_factory=dict)

    def query_string(self, **extra: Any) -> str:
        pairs = {k: v for k, v in self.values.items() if v}
        pairs.update({k: v for k, v in extra.items() if v is not None})
        return urlencode(pairs)


def parse_time(text: str) -> datetime | None:
    """A UTC time typed as YYYY-MM-DD[THH:MM[:SS]] (what <input type=datetime-local> sends)."""
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def parse_filters(params: dict[str, str]) -> AuditForm:
    values = {name: params.get(name, "").strip() for name in FIELDS}
    errors: dict[str, str] = {}
    for name in ("actor", "action", "target", "q"):
        if len(values[name]) > MAX_TEXT:
            errors[name] = f"At most {MAX_TEXT} characters."
    if values["account"] and not ACCOUNT_ID.fullmatch(values["account"]):
        errors["account"] = "An AWS account id: 12 digits."
    if values["outcome"] and values["outcome"] not in OUTCOMES:
        errors["outcome"] = "Choose one of the listed outcomes."
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        times[name] = parse_time(values[name]) if values[name] else None
        if values[name] and times[name] is None:
            errors[name] = "Use a date and time such as 2026-11-28T14:30 (UTC)."
    since, until = times["since"], times["until"]
    if since and until and since >= until:
        errors["until"] = "Must be after the start of the range."
    if errors:
        return AuditForm(values, AuditFilters(), errors)
    filters = AuditFilters(
        actor=values["actor"],
        action=values["action"],
        outcome=values["outcome"],
        target=values["target"],
        since=since,
        until=until,
        q=values["q"],
        account=values["account"],
    )
    return AuditForm(values, filters)


def parse_cursor(text: str | None) -> int | None:
    """A keyset cursor (a sequence number); anything else means "from the newest"."""
    return ascii_int(text)  # "²" passes str.isdigit() but not int()
