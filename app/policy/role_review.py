"""Findings for an existing role, read from IAM: its trust policy, and the union of its
attached and inline policies limited by its boundary. Used where a role is handed on (the EC2
attach review) and reusable by the role page (issue 11).

Managed policy documents are cached per policy id, ARN and default version: a new version has a
new version id, and a policy deleted and made again under the same name has a new policy id.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.aws.errors import AwsError
from app.aws.iam import IamGateway
from app.policy.analyse import analyse
from app.policy.model import Finding, PolicyKind
from app.policy.risk import GATE_TIMEOUT, HeldPolicy, role_risks

_documents: dict[tuple[str, str, str], dict[str, Any]] = {}
_lock = threading.Lock()


def _document(raw: Any) -> dict[str, Any] | None:
    value = json.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else None


def cached_document(
    iam: IamGateway, arn: str, version_id: str, policy_id: str
) -> dict[str, Any] | None:
    """A managed policy version's document, cached per policy id, ARN and version id (versions
    never change; a new default version has a new id; a policy made again under the same name,
    often with the same version id "v1", has a new policy id)."""
    key = (policy_id, arn, version_id)
    with _lock:
        hit = _documents.get(key)
    if hit is None:
        hit = _document(iam.get_policy_document(arn, version_id))
        if hit is not None:
            with _lock:
                _documents[key] = hit
    return hit


def managed_document(iam: IamGateway, arn: str) -> tuple[str, dict[str, Any]] | None:
    """(name, default version document) of a managed policy."""
    policy = iam.get_policy(arn)
    document = cached_document(iam, arn, policy.default_version_id, policy.policy_id)
    return (policy.name, document) if document is not None else None


def role_findings(
    iam: IamGateway, role_name: str, *, account_id: str | None = None, timeout: float = GATE_TIMEOUT
) -> list[Finding]:
    """Every finding for the role as it is in IAM now (AwsError when it cannot be read)."""
    role = iam.get_role(role_name)
    return trust_findings(role.trust_policy, account_id) + held_risks(
        iam, role_name, role.permissions_boundary_arn, timeout=timeout
    )


def trust_findings(trust: Any, account_id: str | None = None) -> list[Finding]:
    """Findings for a trust policy as IAM holds it (a dict, or the text when not JSON)."""
    text = trust if isinstance(trust, str) else json.dumps(trust, indent=4)
    return [
        f.about("Trust policy")
        for f in analyse(text, PolicyKind.TRUST, account_id=account_id).findings
    ]


def held_risks(
    iam: IamGateway, role_name: str, boundary_arn: str | None, *, timeout: float = GATE_TIMEOUT
) -> list[Finding]:
    """Risk findings for the union of what the role holds now, limited by `boundary_arn`."""
    return Holdings.read(iam, role_name).risks(boundary_arn, timeout=timeout)


@dataclass
class Holdings:
    """What a role holds, read from IAM once (attached policy ARNs, inline documents by name),
    so the risks before a change and after it come from the same reads; managed documents
    looked up for either are kept for the other."""

    iam: IamGateway
    attached: list[str]
    inline: dict[str, dict[str, Any] | None]
    _named: dict[str, tuple[str, dict[str, Any]] | None] = field(default_factory=dict)

    @classmethod
    def read(cls, iam: IamGateway, role_name: str) -> Holdings:
        attached = [a.arn for a in iam.list_attached_role_policies(role_name)]
        inline = {
            name: _document(iam.get_role_policy(role_name, name).document)
            for name in iam.list_role_policy_names(role_name)
        }
        return cls(iam, attached, inline)

    def named(self, arn: str) -> tuple[str, dict[str, Any]] | None:
        if arn not in self._named:
            self._named[arn] = managed_document(self.iam, arn)
        return self._named[arn]

    def risks(
        self,
        boundary_arn: str | None,
        *,
        attach: Iterable[str] = (),
        detach: Iterable[str] = (),
        inline: Mapping[str, dict[str, Any] | None] | None = None,
        timeout: float = GATE_TIMEOUT,
    ) -> list[Finding]:
        """Risk findings for the union of what the role holds, limited by `boundary_arn`;
        with `attach`, `detach` and `inline` (a policy name to its new document, or None when
        it is deleted), for the role as it will be after that change."""
        documents = {**self.inline, **(inline or {})}
        gone = set(detach)
        arns = [a for a in self.attached if a not in gone]
        held: list[HeldPolicy] = []
        for arn in [*arns, *(a for a in attach if a not in arns)]:
            named = self.named(arn)
            if named is not None:
                held.append(HeldPolicy(named[0], named[1], "managed"))
        for name in sorted(documents):
            if (document := documents[name]) is not None:
                held.append(HeldPolicy(name, document, "inline"))
        boundary = None
        if boundary_arn:
            try:
                named = self.named(boundary_arn)
            except AwsError:
                named = None
            if named is not None:
                boundary = HeldPolicy(named[0], named[1], "boundary")
        return role_risks(held, boundary, timeout=timeout)
