"""Refusing passwords that attackers try first (OWASP ASVS 5.0, V6.2: check new passwords
against breached and common passwords; no composition rules).

The lists ship with zxcvbn (Dropbox's password strength estimator, maintained on PyPI): its
30,000 most common passwords from breach corpora, plus name and word lists it uses to estimate
how many guesses a password would take. Nothing is fetched at run time. A password is refused
when it is only whitespace, when it is on the common-password list (ignoring case), or when
zxcvbn estimates fewer than 10^8 guesses (its score below 3: "safely unguessable" starts at 3),
which catches "password1234", "qwertyuiop12", "aaaaaaaaaaaa" and the user's own name with a
year on it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_SCORE = 3  # zxcvbn: 3 = at least 10^8 guesses
ZXCVBN_MAX = 72  # zxcvbn refuses longer input; the first 72 characters are what it judges


@cache
def _common() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def weak_password_problem(password: str, user_name: str = "") -> str | None:
    """Why `password` is refused, in words for the person choosing it, or None."""
    if not password.strip():
        return "A password cannot be only spaces."
    if password.lower() in _common() or password.strip().lower() in _common():
        return "That password is one of the most common (found in breached password lists)."
    inputs = [user_name, "roledesk", "role desk"] if user_name else ["roledesk", "role desk"]
    result: dict[str, Any] = zxcvbn(password[:ZXCVBN_MAX], user_inputs=inputs)
    if int(result["score"]) < MIN_SCORE:
        hint = " ".join(result["feedback"].get("suggestions") or [])
        return "That password is too easy to guess." + (f" {hint}" if hint else "")
    return None
