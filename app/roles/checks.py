"""The policy checks the role page's editors use, behind ONE function.

Today they are the wizard's (grammar with line and column, least-privilege warnings); the
policy-analysis work of issue 10 (`app.policy.analyse`) replaces the body of `analyse` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from app.wizard.policy_grammar import PolicyProblem, check_policy
from app.wizard.review import permission_warnings, trust_warnings

Kind = Literal["trust", "identity"]


@dataclass
class Analysis:
    document: dict[str, Any] | None
    errors: list[PolicyProblem] = field(default_factory=list)  # block the change
    warnings: list[str] = field(default_factory=list)  # shown on the review

    @property
    def ok(self) -> bool:
        return self.document is not None and not self.errors


def analyse(text: str, kind: Kind, account_id: str) -> Analysis:
    document, problems = check_policy(text, kind=kind)
    if document is None or problems:
        return Analysis(document, problems)
    warnings = (
        trust_warnings(document, account_id)
        if kind == "trust"
        else permission_warnings([], document)
    )
    return Analysis(document, [], warnings)
