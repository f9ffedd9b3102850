"""Risk findings for what a role holds: admin-equivalent access, privilege-escalation paths,
iam:PassRole on every role or to any service, Allow with NotAction, service-wide wildcards,
and data-exfiltration / credential-exposure actions on every resource.

The escalation methods (59), exfiltration and credential-exposure lists come from
cloudsplaining (which expands wildcards with policy_sentry's catalogue). They are applied to
the union of the role's policies (attached, inline), so PassRole in one policy and
ec2:RunInstances in another is one path; a permissions boundary limits what counts.

cloudsplaining takes ~0.5 s on "Action": "*" or NotAction (it expands every action), so it
runs on a worker thread with a timeout, and its results are cached by document content.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.policy.context import as_list
from app.policy.model import Finding

LIVE_TIMEOUT = 0.25  # seconds a live check waits for the deep scan
GATE_TIMEOUT = 20.0  # seconds the review gate waits (it must have the answer)
_CACHE_SIZE = 512


RISK_CODES = frozenset(
    {
        "ADMIN_ACCESS",
        "ALLOW_NOT_ACTION",
        "PASSROLE_ANY_ROLE",
        "PASSROLE_NO_SERVICE",
        "SERVICE_WILDCARD",
        "CREDENTIALS_EXPOSURE",
        "DATA_EXFILTRATION",
        "RISK_SCAN_PENDING",
    }
)


def is_risk_code(code: str) -> bool:
    """A finding of the risk scan (as opposed to grammar and catalogue checks)."""
    return code in RISK_CODES or code.startswith("PRIVILEGE_ESCALATION_")


@dataclass(frozen=True)
class HeldPolicy:
    """One document the role holds: an attached managed policy or an inline policy."""

    name: str
    document: dict[str, Any]
    kind: str = "managed"  # "managed" | "inline"


def _statements(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def _allows(document: dict[str, Any] | None) -> list[tuple[int, dict[str, Any]]]:
    return [(i, s) for i, s in enumerate(_statements(document)) if s.get("Effect") == "Allow"]


def _strs(value: Any) -> list[str]:
    return [str(v) for v in as_list(value) if isinstance(v, str)]


def _matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def grants(statement: dict[str, Any], action: str) -> bool:
    """The statement's Action / NotAction covers `action` (resources and conditions aside)."""
    if "NotAction" in statement:
        return not any(_matches(p, action) for p in _strs(statement["NotAction"]))
    return any(_matches(p, action) for p in _strs(statement.get("Action")))


def _on_everything(statement: dict[str, Any]) -> bool:
    return "NotResource" in statement or "*" in _strs(statement.get("Resource"))


# Per-document checks -----------------------------------------------------------------------


def document_risks(document: dict[str, Any] | None, subject: str = "") -> list[Finding]:
    """The findings that need no catalogue expansion, statement by statement."""
    found: list[Finding] = []
    for index, st in _allows(document):
        actions = _strs(st.get("Action"))
        conditioned = bool(st.get("Condition"))
        everything = _on_everything(st)
        if ("*" in actions or "*:*" in actions) and everything and not conditioned:
            found.append(
                Finding(
                    "security_warning",
                    "ADMIN_ACCESS",
                    "Allows every action on every resource: this is administrator access. Grant "
                    "only the actions and resources the role needs.",
                    index,
                    subject=subject,
                )
            )
            continue
        if "NotAction" in st:
            found.append(
                Finding(
                    "security_warning",
                    "ALLOW_NOT_ACTION",
                    "Allow with NotAction allows every action except those listed, including "
                    "actions AWS adds later. List the actions to allow in Action instead.",
                    index,
                    subject=subject,
                )
            )
        if grants(st, "iam:PassRole"):
            if everything:
                found.append(
                    Finding(
                        "security_warning",
                        "PASSROLE_ANY_ROLE",
                        "Allows iam:PassRole on every role: the role can hand any role, including "
                        "more powerful ones, to a service. Limit Resource to the roles it must "
                        "pass.",
                        index,
                        subject=subject,
                    )
                )
            elif "iam:passedtoservice" not in json.dumps(st.get("Condition", {})).lower():
                found.append(
                    Finding(
                        "warning",
                        "PASSROLE_NO_SERVICE",
                        "iam:PassRole has no iam:PassedToService condition: the roles can be "
                        "passed to any service. Add the condition naming the service.",
                        index,
                        subject=subject,
                    )
                )
        wildcards = sorted({a for a in actions if a.endswith(":*") and a != "*:*"})
        if wildcards and everything:
            found.append(
                Finding(
                    "warning",
                    "SERVICE_WILDCARD",
                    f"Allows every action of {', '.join(wildcards)} on every resource. List the "
                    "actions the role needs.",
                    index,
                    subject=subject,
                )
            )
    return found


def is_admin(document: dict[str, Any] | None) -> bool:
    return any(f.code == "ADMIN_ACCESS" for f in document_risks(document))


# cloudsplaining, off the request thread ---------------------------------------------------

_executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-risk")
_cache: OrderedDict[str, concurrent.futures.Future[dict[str, Any]]] = OrderedDict()
_lock = threading.Lock()


def _scan(document: dict[str, Any]) -> dict[str, Any]:
    from cloudsplaining.command.scan_policy_file import scan_policy

    return scan_policy(document)


def deep_scan(document: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """cloudsplaining's results for `document`, or None if not ready within `timeout`."""
    key = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    with _lock:
        future = _cache.get(key)
        if future is None:
            future = _executor.submit(_scan, document)
            _cache[key] = future
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(key)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        return None
    except Exception:  # a document cloudsplaining cannot read (grammar errors report it)
        return {}


def warm_up() -> None:
    """Import cloudsplaining and its catalogue on the worker thread now, so the first live
    check does not wait for it."""
    deep_scan({"Version": "2012-10-17", "Statement": []}, timeout=0)


# The union of what a role holds -------------------------------------------------------------


def _who(policies: list[HeldPolicy], action: str) -> list[str]:
    return [p.name for p in policies if any(grants(s, action) for _, s in _allows(p.document))]


def _boundary_allows(boundary: dict[str, Any] | None, action: str) -> bool:
    if boundary is None:
        return True
    for st in _statements(boundary):
        if (
            st.get("Effect") == "Deny"
            and grants(st, action)
            and _on_everything(st)
            and not st.get("Condition")
        ):
            return False
    return any(grants(st, action) for _, st in _allows(boundary))


def role_risks(
    policies: Iterable[HeldPolicy],
    boundary: HeldPolicy | None = None,
    *,
    timeout: float = GATE_TIMEOUT,
) -> list[Finding]:
    """Risk findings for a role holding `policies`, limited by `boundary` (if any).

    Each finding's `subject` names the policy (or policies) it comes from. When the deep
    scan does not finish within `timeout`, a suggestion says the list is incomplete.
    """
    held = list(policies)
    limit = boundary.document if boundary else None
    found: list[Finding] = []
    for policy in held:
        for f in document_risks(policy.document, policy.name):
            found.append(_limited(f, limit, boundary))
    if any(f.code == "ADMIN_ACCESS" and f.level == "security_warning" for f in found):
        return found  # every escalation path is implied; the deep scan would list them all
    combined = {
        "Version": "2012-10-17",
        "Statement": [s for p in held for _, s in _allows(p.document)],
    }
    if not combined["Statement"]:
        return found
    scan = deep_scan(combined, timeout)
    if scan is None:
        found.append(
            Finding(
                "suggestion",
                "RISK_SCAN_PENDING",
                "The privilege-escalation scan is still running for these policies; update the "
                "page in a moment to see its findings.",
            )
        )
        return found
    return found + _scan_findings(scan, held, limit)


def _limited(
    finding: Finding, limit: dict[str, Any] | None, boundary: HeldPolicy | None
) -> Finding:
    if (
        boundary is None
        or finding.code not in ("ADMIN_ACCESS", "ALLOW_NOT_ACTION")
        or is_admin(limit)
    ):
        return finding
    return Finding(
        "warning",
        finding.code,
        finding.message
        + f" The permissions boundary {boundary.name} limits what it can actually do.",
        finding.statement,
        subject=finding.subject,
    )


def _scan_findings(
    scan: dict[str, Any], held: list[HeldPolicy], limit: dict[str, Any] | None
) -> list[Finding]:
    found: list[Finding] = []
    for path in scan.get("PrivilegeEscalation", {}).get("findings", []):
        actions = [str(a) for a in path.get("actions", [])]
        if not all(_boundary_allows(limit, a) for a in actions):
            continue
        names = sorted({n for a in actions for n in _who(held, a)})
        found.append(
            Finding(
                "security_warning",
                f"PRIVILEGE_ESCALATION_{path.get('type', 'UNKNOWN')}",
                f"Privilege escalation ({path.get('type')}): {', '.join(actions)} together let "
                "the role give itself more permissions. Remove one of them or limit its resources.",
                subject=", ".join(names),
            )
        )
    for category, code, what in (
        ("CredentialsExposure", "CREDENTIALS_EXPOSURE", "return credentials"),
        ("DataExfiltration", "DATA_EXFILTRATION", "read data or secrets"),
    ):
        actions = [
            a
            for a in scan.get(category, {}).get("findings", [])
            if isinstance(a, str) and _boundary_allows(limit, a)
        ]
        if actions:
            shown = ", ".join(actions[:8]) + (
                f" and {len(actions) - 8} more" if len(actions) > 8 else ""
            )
            names = sorted({n for a in actions[:50] for n in _who(held, a)})
            found.append(
                Finding(
                    "warning",
                    code,
                    f"Actions that {what} are allowed on every resource: {shown}. Limit Resource "
                    "to what the role needs.",
                    subject=", ".join(names),
                )
            )
    return found
