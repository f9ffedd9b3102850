"""The wizard's long-lived parts for one app: draft store, policy index, cached account facts.

Built lazily per application (`wizard_for`), so main.py only includes the router. Account
facts (quotas from GetAccountSummary, the OIDC and SAML providers) are read from IAM and kept
for a few minutes; create re-reads the quotas so they are current when it matters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from app.aws.types import ManagedPolicy
from app.services import Services
from app.wizard.drafts import DraftStore
from app.wizard.policies import PolicyIndex
from app.wizard.steps import DraftCheck, Quotas, check_draft
from app.wizard.trust import Providers

FACTS_TTL = 300.0


class Wizard:
    def __init__(self, services: Services, clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.drafts = DraftStore(services.db)
        self.policies = PolicyIndex(services.iam)
        self._clock = clock
        self._facts: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: str, load: Callable[[], Any], fresh: bool = False) -> Any:
        now = self._clock()
        with self._lock:
            hit = self._facts.get(key)
        if hit is not None and not fresh and now - hit[0] < FACTS_TTL:
            return hit[1]
        value = load()
        with self._lock:
            self._facts[key] = (now, value)
        return value

    def quotas(self, fresh: bool = False) -> Quotas:
        summary = self._cached("quotas", self.services.iam.get_account_summary, fresh)
        return Quotas.from_summary(summary.values)

    def providers(self, fresh: bool = False) -> Providers:
        iam = self.services.iam

        def load() -> Providers:
            return Providers(
                account_id=self.services.identity.account,
                oidc_arns=tuple(sorted(p.arn for p in iam.list_oidc_providers())),
                saml_arns=tuple(sorted(p.arn for p in iam.list_saml_providers())),
            )

        value: Providers = self._cached("providers", load, fresh)
        return value

    def lookup_policy(self, arn: str) -> ManagedPolicy | None:
        return self.policies.get(arn)

    def check(self, data: dict[str, Any], fresh: bool = False) -> DraftCheck:
        return check_draft(data, self.providers(fresh), self.lookup_policy, self.quotas(fresh))


_lock = threading.Lock()


def wizard_for(state: Any, services: Services) -> Wizard:
    """The Wizard stored on `app.state`, created on first use."""
    with _lock:
        found = getattr(state, "wizard", None)
        if found is None:
            found = Wizard(services)
            state.wizard = found
        assert isinstance(found, Wizard)
        return found
