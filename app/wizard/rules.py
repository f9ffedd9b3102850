"""The validation table (aws-iam-behaviour.md A2) in one place.

The server checks every value with these rules before any AWS call (moto enforces few of
them), and the templates render the same limits as HTML attributes (`pattern`, `maxlength`,
`min`, `max`, `required`) through `Rule.html_attrs`, so the browser's hints and the server's
verdict cannot drift apart. HTML patterns are compiled by browsers with the `v` flag, hence
the extra escaping of `-` and `/` inside character classes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

from app.web.params import ascii_int


@dataclass(frozen=True)
class Rule:
    """Length and character rules for one text field."""

    label: str
    min_len: int
    max_len: int
    pattern: str | None = None  # Python regex for the whole value
    html_pattern: str | None = None  # the same rule for the browser (v-flag syntax)
    hint: str = ""
    further: Callable[[str], str | None] | None = None  # more checks; returns an error

    def check(self, value: str, *, required: bool = True) -> str | None:
        """An error sentence for `value`, or None when it is valid."""
        if not value:
            if required and self.min_len > 0:
                return f"Enter the {self.label}."
            return None
        if self.min_len == self.max_len and len(value) != self.max_len:
            return f"The {self.label} must be exactly {self.hint}."
        if len(value) < self.min_len:
            return f"The {self.label} must be at least {self.min_len} characters."
        if len(value) > self.max_len:
            return f"The {self.label} must be at most {self.max_len} characters ({len(value)} now)."
        if self.pattern and not re.fullmatch(self.pattern, value, re.ASCII):
            return f"The {self.label} may contain only {self.hint}."
        return self.further(value) if self.further else None

    def html_attrs(self, *, required: bool = True, limit_length: bool = True) -> Markup:
        """`maxlength`, `minlength`, `pattern` and `required` for the matching input.

        Without `limit_length` the browser does not cut what is typed at the maximum (a
        cut name would create a role under another name): the server's error says why."""
        parts = [f'maxlength="{self.max_len}"'] if limit_length else []
        if self.min_len > 1:
            parts.append(f'minlength="{self.min_len}"')
        if self.html_pattern:
            parts.append(f'pattern="{escape(self.html_pattern)}"')
        if required:
            parts.append("required")
        return Markup(" ".join(parts))  # noqa: S704 - every part above is escaped or constant


_NAME_CHARS = "letters, digits and + = , . @ _ -"

ROLE_NAME = Rule("role name", 1, 64, r"[\w+=,.@-]+", r"[\w+=,.@\-]+", _NAME_CHARS)
POLICY_NAME = Rule("policy name", 1, 128, r"[\w+=,.@-]+", r"[\w+=,.@\-]+", _NAME_CHARS)
INLINE_POLICY_NAME = Rule(
    "inline policy name",
    1,
    128,
    r"[\x21-\x7e]+",
    r"[!-~]+",
    "printable ASCII characters except \\ / * ? and spaces",
    further=lambda v: (
        "The inline policy name may not contain \\ / * or ?."
        if any(c in v for c in "\\/*?")
        else None
    ),
)
PATH = Rule(
    "path",
    1,
    512,
    r"/|/[\x21-\x7e]+/",
    r"/|/[!-~]+/",
    "printable ASCII characters, and it must start and end with /",
)
DESCRIPTION = Rule(
    "description",
    0,
    1000,
    r"[\t\n\r\x20-\x7e\xa1-\xff]*",
    None,
    "letters, digits, spaces and Latin-1 punctuation (no control characters)",
)
ACCOUNT_ID = Rule("account ID", 12, 12, r"\d{12}", r"\d{12}", "12 digits")
EXTERNAL_ID = Rule(
    "external ID",
    2,
    1224,
    r"[\w+=,.@:/-]+",
    r"[\w+=,.@:\/\-]+",
    "letters, digits and + = , . @ : / -",
)
COGNITO_POOL_ID = Rule(
    "identity pool ID",
    1,
    55,
    r"[\w-]+:[0-9a-f-]+",
    r"[\w\-]+:[0-9a-f\-]+",
    "the form region:guid, for example us-east-1:0f3c1e4e-5a1b-4a3b-9f7e-1d2c3b4a5e6f",
)
AUDIENCE = Rule(
    "audience", 1, 255, r"[\x21-\x7e]+", r"[!-~]+", "printable characters without spaces"
)
GITHUB_ORG = Rule(
    "GitHub organisation",
    1,
    60,
    r"[A-Za-z0-9-]{1,39}(@\d+)?",
    r"[A-Za-z0-9\-]{1,39}(@\d+)?",
    "letters, digits and - (optionally @ and its immutable id, as in octo-org@1234567)",
)
GITHUB_REPO = Rule(
    "GitHub repository",
    1,
    100,
    r"[A-Za-z0-9_.-]+(@\d+)?|\*",
    r"[A-Za-z0-9_.\-]+(@\d+)?|\*",
    "letters, digits, _ . - (optionally @ and its immutable id; or * for every repository)",
)
GITHUB_BRANCH = Rule(
    "branch",
    1,
    255,
    r"[A-Za-z0-9_./*@+#-]+",
    r"[A-Za-z0-9_.\/*@+#\-]+",
    "letters, digits and _ . / * @ + # -",
)
SAML_ATTRIBUTE = Rule(
    "SAML attribute",
    6,
    128,
    r"SAML:[A-Za-z0-9_:.]+",
    r"SAML:[A-Za-z0-9_:.]+",
    "SAML: followed by letters, digits and _ : .",
)
SAML_VALUE = Rule("attribute value", 1, 1024, r"[\x20-\x7e]+", r"[ -~]+", "printable ASCII")
SERVICE_PRINCIPAL = Rule(
    "service principal",
    5,
    128,
    r"[a-z0-9][a-z0-9.-]*\.amazonaws\.com(\.cn)?",
    r"[a-z0-9][a-z0-9.\-]*\.amazonaws\.com(\.cn)?",
    "lower-case letters, digits, . and -, ending in .amazonaws.com",
)
POLICY_ARN = Rule(
    "policy ARN", 20, 2048, r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\x21-\x7e]+", None, "an ARN"
)

MAX_SESSION_HOURS = (1, 12)  # MaxSessionDuration 3600-43200 seconds
MAX_TAGS = 50
TAG_KEY_MAX, TAG_VALUE_MAX = 128, 256
# [\p{L}\p{Z}\p{N}_.:/=+\-@] for browsers (v flag); Python's re has no \p, see tag_chars_ok.
TAG_HTML_PATTERN = r"[\p{L}\p{Z}\p{N}_.:\/=+\-@]*"
_TAG_PUNCTUATION = set("_.:/=+-@")


def tag_chars_ok(text: str) -> bool:
    """Unicode letters, separators (spaces), numbers and _ . : / = + - @ only."""
    return all(c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in text)


def check_tag(key: str, value: str) -> str | None:
    """One tag: key 1-128, value 0-256, allowed characters, no `aws:` prefix."""
    if not key:
        return "Enter a key for this tag (or clear its value)."
    if len(key) > TAG_KEY_MAX:
        return f"A tag key may be at most {TAG_KEY_MAX} characters."
    if len(value) > TAG_VALUE_MAX:
        return f"A tag value may be at most {TAG_VALUE_MAX} characters."
    if not tag_chars_ok(key) or not tag_chars_ok(value):
        return "Tags may contain only letters, digits, spaces and _ . : / = + - @."
    if key.lower().startswith("aws:") or value.lower().startswith("aws:"):
        return "Tag keys and values may not begin with aws: (reserved for AWS)."
    return None


def check_tags(tags: list[tuple[str, str]]) -> dict[int, str]:
    """Errors by tag index; also duplicate keys (role tag keys are case-insensitive)."""
    errors: dict[int, str] = {}
    seen: set[str] = set()
    for index, (key, value) in enumerate(tags):
        problem = check_tag(key, value)
        if problem is None and key.lower() in seen:
            problem = "Each tag key may be used once (keys are case-insensitive for roles)."
        if problem:
            errors[index] = problem
        seen.add(key.lower())
    return errors


def check_max_session_hours(raw: str) -> tuple[int | None, str | None]:
    """Hours as typed -> (hours, error)."""
    low, high = MAX_SESSION_HOURS
    hours = ascii_int(raw)  # int() would take "١٢" (Arabic-Indic digits) as 12
    if hours is None:
        return None, f"Enter a whole number of hours from {low} to {high}."
    if not low <= hours <= high:
        return None, f"The maximum session duration must be from {low} to {high} hours."
    return hours, None
