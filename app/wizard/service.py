"""The wizard's long-lived parts for one app: draft store, policy index, cached account facts.

Built lazily per application (`wizard_for`), so main.py only includes the router. Account
facts (quotas from GetAccountSummary, the OIDC and SAML providers) are read from IAM and kept
for a few minutes. Create wants them current: it accepts quotas read within the last minute
(they change only when AWS raises a quota, and AWS enforces them anyway), and re-reads the
providers only when the trust policy names one of the account's providers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from app.aws.access_analyzer import AccessAnalyzerGateway
from app.aws.errors import AwsError
from app.aws.types import ManagedPolicy
from app.policy import Finding, PolicyKind, risk
from app.policy.access_analyzer import AccessAnalyzerChecks
from app.policy.role_review import cached_document
from app.services import Services
from app.wizard.drafts import DraftStore
from app.wizard.policies import PolicyIndex
from app.wizard.steps import DraftCheck, Quotas, check_draft
from app.wizard.trust import WEB_PROVIDERS, Providers

FACTS_TTL = 300.0
FRESH_FOR_CREATE = 60.0  # the oldest quotas create accepts


class Wizard:
    def __init__(self, services: Services, clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.drafts = DraftStore(services.db)
        self.policies = PolicyIndex(services.iam)
        self._clock = clock
        self._facts: dict[str, tuple[float, Any]] = {}
        risk.warm_up()
        # On real AWS, IAM Access Analyzer's ValidatePolicy adds AWS's own findings; moto
        # has no Access Analyzer, so in the sandbox the local checks stand alone.
        self._analyzer = (
            None
            if services.settings.is_sandbox
            else AccessAnalyzerChecks(AccessAnalyzerGateway(services.clients))
        )
        self._lock = threading.Lock()

    def _cached(self, key: str, load: Callable[[], Any], max_age: float = FACTS_TTL) -> Any:
        now = self._clock()
        with self._lock:
            hit = self._facts.get(key)
        if hit is not None and now - hit[0] < max_age:
            return hit[1]
        value = load()
        with self._lock:
            self._facts[key] = (now, value)
        return value

    def quotas(self, fresh: bool = False) -> Quotas:
        max_age = FRESH_FOR_CREATE if fresh else FACTS_TTL
        summary = self._cached("quotas", self.services.iam.get_account_summary, max_age)
        return Quotas.from_summary(summary.values)

    def providers(self, fresh: bool = False) -> Providers:
        iam = self.services.iam

        def load() -> Providers:
            return Providers(
                account_id=self.services.identity.account,
                oidc_arns=tuple(sorted(p.arn for p in iam.list_oidc_providers())),
                saml_arns=tuple(sorted(p.arn for p in iam.list_saml_providers())),
            )

        value: Providers = self._cached("providers", load, 0.0 if fresh else FACTS_TTL)
        return value

    def lookup_policy(self, arn: str) -> ManagedPolicy | None:
        return self.policies.get(arn)

    def remote_findings(self, text: str, kind: PolicyKind) -> list[Finding]:
        """IAM Access Analyzer's findings for `text` (none in the sandbox)."""
        return self._analyzer.findings(text, kind) if self._analyzer is not None else []

    def managed_document(self, policy: ManagedPolicy) -> dict[str, Any] | None:
        """A managed policy's default version document (cached per policy id, ARN and version)."""
        try:
            return cached_document(
                self.services.iam, policy.arn, policy.default_version_id, policy.policy_id
            )
        except AwsError:
            return None

    def check(self, data: dict[str, Any], fresh: bool = False) -> DraftCheck:
        """With `fresh` (before create): recent quotas, and the providers re-read when the
        trust policy depends on one of them."""
        providers = self.providers(fresh and uses_account_provider(data.get("trust") or {}))
        return check_draft(data, providers, self.lookup_policy, self.quotas(fresh))


def uses_account_provider(trust_values: dict[str, Any]) -> bool:
    """Step 1 names one of the account's OIDC or SAML providers (which may have been deleted
    since the step was saved)."""
    kind = trust_values.get("entity_type")
    if kind == "saml":
        return True
    return kind == "web_identity" and trust_values.get("web_provider") not in WEB_PROVIDERS


_lock = threading.Lock()


def wizard_for(state: Any, services: Services) -> Wizard:
    """The Wizard stored on `app.state` (a member account's: on its Services), created on
    first use."""
    with _lock:
        if services.is_member:
            found = services.per_account.get("wizard")
            if found is None:
                found = services.per_account["wizard"] = Wizard(services)
        else:
            found = getattr(state, "wizard", None)
            if found is None:
                found = Wizard(services)
                state.wizard = found
        assert isinstance(found, Wizard)
        return found
