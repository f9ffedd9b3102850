"""Policy JSON grammar checks with line and column, for trust and identity (inline) policies.

moto's CreateRole accepts any trust policy at all (aws-iam-behaviour.md B2), so RoleDesk
checks the grammar itself (IAM-UG reference_policies_grammar): Version, Statement, Effect,
Principal only in trust policies, no Resource in trust policies, only STS assume-style actions
in trust policies, condition operators, unique Sids and the policy character set. JSON syntax
errors carry json's own line/column; grammar errors point at the offending key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json import decoder as _json_decoder
from typing import Any, Literal

from app.web.params import JSON_MAX_DEPTH, json_depth

Kind = Literal["trust", "identity"]
MAX_DOCUMENT_CHARS = 131_072
VERSIONS = ("2012-10-17", "2008-10-17")
TRUST_ACTIONS = frozenset(
    {
        "sts:AssumeRole",
        "sts:AssumeRoleWithSAML",
        "sts:AssumeRoleWithWebIdentity",
        "sts:TagSession",
        "sts:SetSourceIdentity",
        "sts:SetContext",
    }
)
PRINCIPAL_KEYS = frozenset({"AWS", "Federated", "Service", "CanonicalUser"})
STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_OPERATOR = re.compile(
    r"(ForAllValues:|ForAnyValue:)?"
    r"(String(Not)?Equals(IgnoreCase)?|String(Not)?Like|"
    r"Numeric(Not)?Equals|Numeric(LessThan|GreaterThan)(Equals)?|"
    r"Date(Not)?Equals|Date(LessThan|GreaterThan)(Equals)?|Bool|BinaryEquals|"
    r"(Not)?IpAddress|Arn(Not)?(Equals|Like))(IfExists)?|Null"
)
_ACTION = re.compile(r"\*|[a-zA-Z0-9-]+:[A-Za-z0-9*?]+")
_SID = re.compile(r"[A-Za-z0-9]*")

Path = tuple[str | int, ...]


def scanstring(text: str, end: int) -> tuple[str, int]:
    """json's own string scanner: the string starting after the quote at `end - 1`."""
    value, after = _json_decoder.scanstring(text, end)  # type: ignore[attr-defined]
    return str(value), int(after)


@dataclass(frozen=True)
class PolicyProblem:
    message: str
    line: int
    column: int

    @property
    def text(self) -> str:
        return f"Line {self.line}, column {self.column}: {self.message}"


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def key_offsets(text: str) -> dict[Path, int]:
    """Offset of each object key (by path) and of each array item in valid JSON `text`."""
    offsets: dict[Path, int] = {}
    ws = " \t\n\r"

    def skip(i: int) -> int:
        while i < len(text) and text[i] in ws:
            i += 1
        return i

    def value(i: int, path: Path) -> int:
        i = skip(i)
        offsets.setdefault(path, i)
        if text[i] == "{":
            i = skip(i + 1)
            while text[i] != "}":
                key, end = scanstring(text, i + 1)
                offsets[(*path, key)] = i
                i = value(skip(end) + 1, (*path, key))
                i = skip(i)
                i = skip(i + 1) if text[i] == "," else i
            return i + 1
        if text[i] == "[":
            i = skip(i + 1)
            index = 0
            while text[i] != "]":
                i = skip(value(i, (*path, index)))
                i = skip(i + 1) if text[i] == "," else i
                index += 1
            return i + 1
        if text[i] == '"':
            return scanstring(text, i + 1)[1]
        while i < len(text) and text[i] not in ",]}" + ws:
            i += 1
        return i

    value(0, ())
    return offsets


class _Checker:
    def __init__(self, text: str, kind: Kind) -> None:
        self.text = text
        self.kind = kind
        try:
            self.offsets = key_offsets(text)
        except (IndexError, ValueError):  # cannot happen for text json.loads accepted
            self.offsets = {}
        self.problems: list[PolicyProblem] = []

    def problem(self, path: Path, message: str) -> None:
        while path and path not in self.offsets:
            path = path[:-1]
        line, column = _line_col(self.text, self.offsets.get(path, 0))
        self.problems.append(PolicyProblem(message, line, column))

    def run(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            self.problem((), "A policy must be a JSON object ({ ... }).")
            return
        for key in doc:
            if key not in ("Version", "Id", "Statement"):
                self.problem((key,), f"Unknown top-level field {key}.")
        if "Version" not in doc:
            self.problem((), 'Add "Version": "2012-10-17".')
        elif doc["Version"] not in VERSIONS:
            self.problem(("Version",), 'Version must be "2012-10-17" (or the legacy "2008-10-17").')
        statements = doc.get("Statement")
        if statements is None:
            self.problem((), "Add a Statement.")
            return
        items = statements if isinstance(statements, list) else [statements]
        if not items:
            self.problem(("Statement",), "Statement must not be empty.")
        sids: set[str] = set()
        for index, statement in enumerate(items):
            path: Path = ("Statement", index) if isinstance(statements, list) else ("Statement",)
            self.statement(path, statement, sids)

    def statement(self, path: Path, st: Any, sids: set[str]) -> None:
        if not isinstance(st, dict):
            self.problem(path, "Each statement must be a JSON object.")
            return
        for key in st:
            if key not in STATEMENT_KEYS:
                self.problem((*path, key), f"Unknown statement field {key}.")
        sid = st.get("Sid")
        if sid is not None:
            if not isinstance(sid, str) or not _SID.fullmatch(sid):
                self.problem((*path, "Sid"), "Sid may contain only letters and digits.")
            elif sid in sids:
                self.problem((*path, "Sid"), f"Sid {sid} is used twice; Sids must be unique.")
            else:
                sids.add(sid)
        if st.get("Effect") not in ("Allow", "Deny"):
            where = (*path, "Effect") if "Effect" in st else path
            self.problem(where, 'Effect must be "Allow" or "Deny" (case matters).')
        self.actions(path, st)
        if self.kind == "trust":
            self.trust_statement(path, st)
        else:
            self.identity_statement(path, st)
        if "Condition" in st:
            self.condition((*path, "Condition"), st["Condition"])

    def actions(self, path: Path, st: dict[str, Any]) -> None:
        present = [k for k in ("Action", "NotAction") if k in st]
        if len(present) != 1:
            self.problem(path, "A statement needs exactly one of Action or NotAction.")
            return
        key = present[0]
        values = st[key] if isinstance(st[key], list) else [st[key]]
        for index, action in enumerate(values):
            where = (*path, key, index) if isinstance(st[key], list) else (*path, key)
            if not isinstance(action, str) or not _ACTION.fullmatch(action):
                self.problem(where, f"{action!r} is not an action like service:Action.")
            elif self.kind == "trust" and (key == "NotAction" or action not in TRUST_ACTIONS):
                self.problem(
                    where,
                    "A trust policy may only allow STS actions: "
                    + ", ".join(sorted(TRUST_ACTIONS))
                    + ".",
                )

    def trust_statement(self, path: Path, st: dict[str, Any]) -> None:
        for key in ("Resource", "NotResource"):
            if key in st:
                self.problem((*path, key), f"Has prohibited field {key}: trust policies have none.")
        present = [k for k in ("Principal", "NotPrincipal") if k in st]
        if len(present) != 1:
            self.problem(path, "A trust policy statement needs a Principal.")
            return
        principal = st[present[0]]
        where = (*path, present[0])
        if principal == "*":
            return
        if not isinstance(principal, dict) or not principal:
            self.problem(where, 'Principal must be "*" or an object such as {"Service": "..."}.')
            return
        for key, value in principal.items():
            values = value if isinstance(value, list) else [value]
            if key not in PRINCIPAL_KEYS:
                self.problem((*where, key), f"Unknown principal type {key}.")
            elif not values or not all(isinstance(v, str) and v for v in values):
                self.problem((*where, key), f"{key} must be a string or a list of strings.")

    def identity_statement(self, path: Path, st: dict[str, Any]) -> None:
        for key in ("Principal", "NotPrincipal"):
            if key in st:
                self.problem(
                    (*path, key), f"Has prohibited field {key}: only trust policies have one."
                )
        present = [k for k in ("Resource", "NotResource") if k in st]
        if len(present) != 1:
            self.problem(path, "A statement needs exactly one of Resource or NotResource.")
            return
        value = st[present[0]]
        for resource in value if isinstance(value, list) else [value]:
            if not isinstance(resource, str) or not (
                resource == "*" or resource.startswith("arn:")
            ):
                self.problem((*path, present[0]), f'Resource {resource!r} must be an ARN or "*".')

    def condition(self, path: Path, condition: Any) -> None:
        if not isinstance(condition, dict):
            self.problem(path, "Condition must be an object of operators.")
            return
        for operator, block in condition.items():
            if not _OPERATOR.fullmatch(operator):
                self.problem((*path, operator), f"Unknown condition operator {operator}.")
            elif not isinstance(block, dict) or not block:
                self.problem((*path, operator), f"{operator} needs an object of condition keys.")


def _charset_problem(text: str) -> PolicyProblem | None:
    for offset, char in enumerate(text):
        if not (char in "\t\n\r" or " " <= char <= "\u00ff"):
            line, column = _line_col(text, offset)
            return PolicyProblem(
                f"Character U+{ord(char):04X} is not allowed in a policy.", line, column
            )
    return None


def check_policy(text: str, *, kind: Kind) -> tuple[dict[str, Any] | None, list[PolicyProblem]]:
    """Parse and check `text`. Returns the document (None if not JSON) and the problems."""
    if not text.strip():
        return None, [PolicyProblem("Enter the policy JSON.", 1, 1)]
    if len(text) > MAX_DOCUMENT_CHARS:
        return None, [
            PolicyProblem(f"A policy may be at most {MAX_DOCUMENT_CHARS} characters.", 1, 1)
        ]
    if charset := _charset_problem(text):
        return None, [charset]
    if json_depth(text) > JSON_MAX_DEPTH:
        message = f"The policy is nested more than {JSON_MAX_DEPTH} levels deep."
        return None, [PolicyProblem(message, 1, 1)]
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [PolicyProblem(f"Not valid JSON: {exc.msg}.", exc.lineno, exc.colno)]
    checker = _Checker(text, kind)
    checker.run(doc)
    return (doc if isinstance(doc, dict) else None), checker.problems


def minified_size(document: dict[str, Any]) -> int:
    """Characters AWS counts against the size quotas (whitespace outside strings excluded)."""
    return len(json.dumps(document, separators=(",", ":")))
