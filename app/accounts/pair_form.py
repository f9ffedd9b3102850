"""The cross-account pair form: every value checked on the server before any AWS call
(errors by field), then the checks that need AWS, each in the account it concerns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from app.accounts.hub import AccountHub
from app.accounts.model import AccountList
from app.accounts.pair import (
    EXTERNAL_ID,
    INLINE,
    MANAGED,
    ORGANIZATION,
    Pair,
    inline_clash,
    managed_clash,
)
from app.aws.errors import AwsError, NotFound
from app.web.params import is_policy_arn
from app.wizard.rules import DESCRIPTION, ROLE_NAME
from app.wizard.rules import EXTERNAL_ID as EXTERNAL_ID_RULE

MAX_MANAGED = 10  # IAM's default quota of managed policies per role
FIELDS = (
    "source_account",
    "source_role",
    "target_account",
    "role_name",
    "condition",
    "external_id",
    "require_mfa",
    "description",
    "managed_policies",
    "source_policy",
)


class Form(Protocol):
    def get(self, key: str, default: str = "") -> str: ...


@dataclass
class PairForm:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, form: Form | dict[str, str]) -> PairForm:
        values = {name: str(form.get(name, "") or "").strip() for name in FIELDS}
        values["condition"] = values["condition"] or EXTERNAL_ID
        values["source_policy"] = values["source_policy"] or INLINE
        return cls(values)

    @property
    def policy_arns(self) -> tuple[str, ...]:
        lines = self.values["managed_policies"].splitlines()
        return tuple(dict.fromkeys(line.strip() for line in lines if line.strip()))

    def check(self, accounts: AccountList) -> bool:
        """Shape checks, no AWS call. True when every field is valid."""
        v, e = self.values, self.errors
        known = {a.account_id for a in accounts.accounts}
        for name, label in (("source_account", "the account"), ("target_account", "the account")):
            if v[name] not in known:
                e[name] = f"Choose {label} from the list."
        if "source_account" not in e and v["source_account"] == v["target_account"]:
            e["target_account"] = "Choose an account other than the first one."
        for name, label in (("source_role", "role name"), ("role_name", "role name")):
            problem = ROLE_NAME.check(v[name])
            if problem:
                e[name] = problem.replace("role name", label)
        if v["condition"] not in (EXTERNAL_ID, ORGANIZATION):
            e["condition"] = "Choose an external ID or the organization."
        elif v["condition"] == EXTERNAL_ID:
            problem = EXTERNAL_ID_RULE.check(v["external_id"])
            if problem:
                e["external_id"] = problem
        if v["require_mfa"] not in ("", "on"):
            e["require_mfa"] = "Tick the box or leave it empty."
        if v["source_policy"] not in (INLINE, MANAGED):
            e["source_policy"] = "Choose an inline policy or a customer managed policy."
        self._check_role_side()
        return not e

    def _check_role_side(self) -> None:
        v, e = self.values, self.errors
        problem = DESCRIPTION.check(v["description"], required=False)
        if problem:
            e["description"] = problem
        arns = self.policy_arns
        bad = [a for a in arns if not is_policy_arn(a)]
        if bad:
            e["managed_policies"] = f"Not a policy ARN: {bad[0][:100]}"
        elif len(arns) > MAX_MANAGED:
            e["managed_policies"] = f"Attach at most {MAX_MANAGED} managed policies."

    def prepare(self, hub: AccountHub, accounts: AccountList, user: str) -> Pair | None:
        """The checks that need AWS (after `check` passed): A's role exists and has no inline
        policy of the name RoleDesk would use (or, for a managed policy, A has no customer
        managed policy at its ARN); B has no role of the new name; the organization's id
        when that condition is chosen. None, with errors, when refused."""
        v, e = self.values, self.errors
        source = accounts.find(v["source_account"])
        target = accounts.find(v["target_account"])
        assert source is not None
        assert target is not None
        org_id = ""
        if v["condition"] == ORGANIZATION:
            org_id = hub.organization_id() or ""
            if not org_id:
                e["condition"] = (
                    "RoleDesk cannot read the organization (DescribeOrganization); use an "
                    "external ID instead."
                )
                return None
        try:
            source_role = hub.iam(source, user).get_role(v["source_role"])
        except NotFound:
            e["source_role"] = f"There is no role {v['source_role']} in {source.label}."
            return None
        except AwsError as exc:
            e["source_account"] = _unreachable(exc)
            return None
        pair = Pair(
            source,
            source_role.arn,
            target,
            v["role_name"],
            v["condition"],
            external_id=v["external_id"] if v["condition"] == EXTERNAL_ID else "",
            org_id=org_id,
            require_mfa=v["require_mfa"] == "on",
            description=v["description"],
            managed_policy_arns=self.policy_arns,
            source_policy=v["source_policy"],
        )
        source_iam = hub.iam(source, user)
        try:
            if pair.managed:
                clash = managed_clash(pair, source_iam)
                if clash is not None:
                    e["source_policy"] = (
                        f"{clash[1].message} Choose the inline policy or another role name."
                    )
                    return None
            else:
                clash = inline_clash(pair, source_iam)
                if clash is not None:
                    e["source_role"] = clash[1].message
                    return None
        except AwsError as exc:
            e["source_account"] = _unreachable(exc)
            return None
        try:
            hub.iam(target, user).get_role(pair.role_name)
        except NotFound:
            return pair
        except AwsError as exc:
            e["target_account"] = _unreachable(exc)
            return None
        e["role_name"] = f"{target.label} already has a role {pair.role_name}."
        return None


def _unreachable(exc: AwsError) -> str:
    return (
        f"RoleDesk cannot act in this account: {exc.plain} (AWS error {exc.code}, request id "
        f"{exc.request_id or 'none given'})."
    )
