"""Snapshots of the in-process moto server's state, so the suite seeds the sandbox once.

Why: most tests start from the seeded sandbox. Resetting moto and seeding it again for each test
cost about 90 AWS calls plus rebuilding IAM's 1,582 AWS managed policies, which was most of the
suite's time. The sandbox runs in this process (app.aws.sandbox), so its state is moto's
in-memory backends: a snapshot is a deep copy of them, and a restore puts a fresh copy back into
the same BackendDict objects that moto's request handlers read.

AWS managed policies are shared between copies instead of copied (they are 1,582 objects that
only the attachment count ever changes), and their counts are put back on every restore.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from moto.core.base_backend import AccountSpecificBackend, BackendDict, backend_lock
from moto.iam.models import AWSManagedPolicy, IAMBackend

# BackendDict -> account id -> region -> the region's backend object.
_State = dict[Any, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class SandboxState:
    state: _State
    shared: dict[int, AWSManagedPolicy]
    attachment_counts: dict[int, int]

    @classmethod
    def take(cls) -> SandboxState:
        with backend_lock:
            live: _State = {
                backends: {
                    account: dict(dict.items(regions)) for account, regions in dict.items(backends)
                }
                for backends in BackendDict._instances  # type: ignore[misc]
            }
            shared = _aws_managed_policies(live)
            counts = {key: policy.attachment_count for key, policy in shared.items()}
            return cls(_copy(live, shared), shared, counts)

    def restore(self) -> None:
        with backend_lock:
            for backends in BackendDict._instances:  # type: ignore[misc]
                dict.clear(backends)
            BackendDict._instances.clear()  # type: ignore[misc]
            for key, count in self.attachment_counts.items():
                self.shared[key].attachment_count = count
            for backends, accounts in _copy(self.state, self.shared).items():
                for account, regions in accounts.items():
                    holder = AccountSpecificBackend(
                        service_name=backends.service_name,
                        account_id=account,
                        backend=backends.backend,
                        use_boto3_regions=backends._use_boto3_regions,
                        additional_regions=backends._additional_regions,
                    )
                    for region, backend in regions.items():
                        dict.__setitem__(holder, region, backend)
                    dict.__setitem__(backends, account, holder)
                BackendDict._instances.append(backends)  # type: ignore[misc]


def _aws_managed_policies(state: _State) -> dict[int, AWSManagedPolicy]:
    return {
        id(policy): policy
        for accounts in state.values()
        for regions in accounts.values()
        for backend in regions.values()
        if isinstance(backend, IAMBackend)
        for policy in backend.aws_managed_policies
    }


def _copy(state: _State, shared: dict[int, AWSManagedPolicy]) -> _State:
    # The BackendDicts themselves are the keys moto's handlers hold: never copied.
    memo: dict[int, Any] = {id(backends): backends for backends in state}
    memo.update(shared)
    return {
        backends: copy.deepcopy(accounts, memo)  # type: ignore[arg-type]
        for backends, accounts in state.items()
    }
