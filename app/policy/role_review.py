"""Findings for an existing role, read from IAM: its trust policy, and the union of its
attached and inline policies limited by its boundary. Used where a role is handed on (the EC2
attach review) and reusable by the role page (issue 11).

Managed policy documents are cached per policy id, ARN and default version: a new version has a
new version id, and a policy deleted and made again under the same name has a new policy id.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.aws.errors import AwsError
from app.aws.iam import IamGateway
from app.policy.analyse import analyse
from app.policy.model import Finding, PolicyKind
from app.policy.risk import GATE_TIMEOUT, HeldPolicy, role_risks

T = TypeVar("T")

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
    """Every finding for the role as it is in IAM now (AwsError when it cannot be read).

    The reads run side by side (GetRole; the attached policies, then their documents; the
    inline policy names, then their documents): on real AWS the check costs its longest
    chain, two or three calls, not the sum of five or more (the EC2 bulk change makes it
    before its first change, issue 15)."""
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="role-findings") as pool:
        role_f = _submit(pool, iam.get_role, role_name)
        holdings = Holdings.read(iam, role_name, pool=pool)
        role = role_f.result()
        if role.permissions_boundary_arn:
            holdings.prefetch(pool, [role.permissions_boundary_arn])
        return trust_findings(role.trust_policy, account_id) + holdings.risks(
            role.permissions_boundary_arn, timeout=timeout
        )


def _submit(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> Future[T]:
    """`fn(*args)` on the pool, in the caller's context (a member account's calls go out as
    the RoleDesk user acting: app.accounts.context)."""
    return pool.submit(contextvars.copy_context().run, fn, *args)


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
    # Managed documents being read on a pool (`prefetch`); an error is raised where
    # `named` asks for the document, as if it had been read then.
    _fetching: dict[str, Future[tuple[str, dict[str, Any]] | None]] = field(default_factory=dict)

    @classmethod
    def read(
        cls, iam: IamGateway, role_name: str, *, pool: ThreadPoolExecutor | None = None
    ) -> Holdings:
        """With `pool`, the two listings side by side, then the documents side by side (the
        attached policies' documents read ahead for `risks`)."""
        if pool is None:
            attached = [a.arn for a in iam.list_attached_role_policies(role_name)]
            inline = {
                name: _document(iam.get_role_policy(role_name, name).document)
                for name in iam.list_role_policy_names(role_name)
            }
            return cls(iam, attached, inline)
        attached_f = _submit(pool, iam.list_attached_role_policies, role_name)
        names_f = _submit(pool, iam.list_role_policy_names, role_name)
        holdings = cls(iam, [a.arn for a in attached_f.result()], {})
        holdings.prefetch(pool, holdings.attached)
        documents = {
            name: _submit(pool, iam.get_role_policy, role_name, name) for name in names_f.result()
        }
        holdings.inline = {name: _document(f.result().document) for name, f in documents.items()}
        return holdings

    def prefetch(self, pool: ThreadPoolExecutor, arns: Iterable[str]) -> None:
        """Start reading these managed documents (`named` waits for them)."""
        for arn in arns:
            if arn not in self._named and arn not in self._fetching:
                self._fetching[arn] = _submit(pool, managed_document, self.iam, arn)

    def named(self, arn: str) -> tuple[str, dict[str, Any]] | None:
        if arn not in self._named:
            fetching = self._fetching.pop(arn, None)
            self._named[arn] = (
                fetching.result() if fetching is not None else managed_document(self.iam, arn)
            )
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
