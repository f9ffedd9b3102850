"""Policy grammar: what IAM refuses (errors) or accepts with a note, for every policy kind.

IAM user guide reference_policies_grammar and the CreateRole / PutRolePolicy errors quoted in
aws-iam-behaviour.md A2/B2. JSON syntax errors carry json's own line and column; grammar
findings point at the offending key.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.policy.context import Context, Statement, as_list
from app.policy.locate import line_col
from app.policy.model import PolicyKind
from app.web.params import JSON_MAX_DEPTH, json_depth

MAX_DOCUMENT_CHARS = 131_072  # counted as AWS counts: see size_of
MAX_TEXT_CHARS = 1_000_000  # what RoleDesk reads at all
VERSIONS = ("2012-10-17", "2008-10-17")
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
OPERATOR = re.compile(
    r"(?:(ForAllValues|ForAnyValue):)?"
    r"(String(?:Not)?Equals(?:IgnoreCase)?|String(?:Not)?Like|"
    r"Numeric(?:Not)?Equals|Numeric(?:LessThan|GreaterThan)(?:Equals)?|"
    r"Date(?:Not)?Equals|Date(?:LessThan|GreaterThan)(?:Equals)?|Bool|BinaryEquals|"
    r"(?:Not)?IpAddress|Arn(?:Not)?(?:Equals|Like))(IfExists)?|(Null)"
)
ACTION = re.compile(r"\*|[a-zA-Z0-9-]+:[A-Za-z0-9*?_-]+")
ARN = re.compile(r"arn:[^:]*:[^:]*:[^:]*:[^:]*:.*")
SID = re.compile(r"[A-Za-z0-9]*")


def size_of(document: Any) -> int:
    """Characters AWS counts against the size quotas: whitespace outside strings is not
    counted, and a non-ASCII character counts once (not as a six-character escape)."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


# What `parse` returns when the text is not a JSON document (any JSON value is one, `null`
# included, so None cannot say it).
UNPARSED: Any = object()


def parse(ctx: Context) -> Any:
    """The JSON document, or UNPARSED after adding the finding that prevents parsing."""
    text = ctx.text
    if not text.strip():
        ctx.add("error", "EMPTY_POLICY", "Enter the policy JSON.")
        return UNPARSED
    if len(text) > MAX_TEXT_CHARS:
        ctx.add(
            "error", "POLICY_TOO_LONG", f"A policy may be at most {MAX_DOCUMENT_CHARS} characters."
        )
        return UNPARSED
    for offset, char in enumerate(text):
        if not (char in "\t\n\r" or " " <= char <= "\u00ff"):
            line, column = line_col(text, offset)
            ctx.findings.append(
                _positioned(
                    "INVALID_CHARACTER",
                    f"Character U+{ord(char):04X} is not allowed in a policy: IAM accepts tab, "
                    "line breaks and the characters U+0020 to U+00FF. Remove or replace it.",
                    line,
                    column,
                )
            )
            return UNPARSED
    if json_depth(text) > JSON_MAX_DEPTH:
        # Checked before json.loads: a 2 KB document nested 1,000 levels deep would exhaust
        # the parser's recursion and every walk after it (issue 12).
        ctx.add(
            "error",
            "POLICY_TOO_DEEP",
            f"The policy is nested more than {JSON_MAX_DEPTH} levels deep. IAM policies nest "
            "a few levels at most: correct the JSON here.",
        )
        return UNPARSED
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        ctx.findings.append(
            _positioned(
                "JSON_SYNTAX",
                f"Not valid JSON: {exc.msg}. Correct the JSON here.",
                exc.lineno,
                exc.colno,
            )
        )
        return UNPARSED


def _positioned(code: str, message: str, line: int, column: int) -> Any:
    from app.policy.model import Finding

    return Finding("error", code, message, None, line, column)


def statements(ctx: Context, doc: Any) -> list[Statement]:
    """Top-level checks; the statements that are objects, for the per-statement checks."""
    if not isinstance(doc, dict):
        ctx.add("error", "NOT_AN_OBJECT", "A policy must be a JSON object ({ ... }).")
        return []
    for key in doc:
        if key not in ("Version", "Id", "Statement"):
            ctx.add(
                "error", "UNKNOWN_ELEMENT", f"Unknown top-level element {key}: remove it.", (key,)
            )
    if "Version" not in doc:
        ctx.add(
            "warning",
            "MISSING_VERSION",
            'Add "Version": "2012-10-17". Without it IAM uses the 2008-10-17 language, in which '
            "policy variables such as ${aws:username} are plain text.",
        )
    elif doc["Version"] not in VERSIONS:
        ctx.add(
            "error",
            "INVALID_VERSION",
            'Version must be "2012-10-17" (or the legacy "2008-10-17").',
            ("Version",),
        )
    elif doc["Version"] == "2008-10-17":
        ctx.add(
            "suggestion",
            "OLD_VERSION",
            'Use "Version": "2012-10-17", the current policy language.',
            ("Version",),
        )
    raw = doc.get("Statement")
    if raw is None:
        ctx.add("error", "MISSING_STATEMENT", "Add a Statement.")
        return []
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        ctx.add(
            "error",
            "EMPTY_STATEMENT",
            "Statement must not be empty: add at least one statement.",
            ("Statement",),
        )
    found: list[Statement] = []
    sids: set[str] = set()
    for index, body in enumerate(items):
        path = ("Statement", index) if isinstance(raw, list) else ("Statement",)
        if not isinstance(body, dict):
            ctx.add(
                "error",
                "STATEMENT_NOT_OBJECT",
                "Each statement must be a JSON object.",
                path,
                index,
            )
            continue
        st = Statement(index, path, body)
        _statement(ctx, st, sids)
        found.append(st)
    return found


def _statement(ctx: Context, st: Statement, sids: set[str]) -> None:
    body = st.body
    for key in body:
        if key not in STATEMENT_KEYS:
            ctx.at(
                st, "error", "UNKNOWN_ELEMENT", f"Unknown statement element {key}: remove it.", key
            )
    sid = body.get("Sid")
    if sid is not None:
        if not isinstance(sid, str) or (
            ctx.kind is not PolicyKind.TRUST and not SID.fullmatch(sid)
        ):
            ctx.at(st, "error", "INVALID_SID", "Sid may contain only letters and digits.", "Sid")
        elif sid and sid in sids:  # empty Sids may repeat (Terraform writes "Sid": "")
            ctx.at(
                st,
                "error",
                "DUPLICATE_SID",
                f"Sid {sid} is used twice; Sids must be unique.",
                "Sid",
            )
        else:
            sids.add(sid)
    if body.get("Effect") not in ("Allow", "Deny"):
        where = ("Effect",) if "Effect" in body else ()
        ctx.at(
            st,
            "error",
            "INVALID_EFFECT",
            'Effect must be "Allow" or "Deny" (case matters).',
            *where,
        )
    present = [k for k in ("Action", "NotAction") if k in body]
    if len(present) != 1:
        ctx.at(
            st, "error", "MISSING_ACTION", "A statement needs exactly one of Action or NotAction."
        )
    else:
        for index, action in enumerate(st.values(present[0])):
            if not isinstance(action, str) or not ACTION.fullmatch(action):
                ctx.add(
                    "error",
                    "INVALID_ACTION_FORMAT",
                    f"{action!r} is not an action like service:Action (the service prefix "
                    "comes first, without wildcards).",
                    st.item_path(present[0], index),
                    st.index,
                )
    if "Condition" in body:
        condition(ctx, st)


def condition(ctx: Context, st: Statement) -> None:
    block = st.body["Condition"]
    if not isinstance(block, dict):
        ctx.at(
            st,
            "error",
            "INVALID_CONDITION",
            "Condition must be an object of operators.",
            "Condition",
        )
        return
    if not block:
        ctx.at(
            st,
            "suggestion",
            "EMPTY_CONDITION",
            "The Condition block is empty: remove it, or add the condition you meant.",
            "Condition",
        )
        return
    for operator, keys in block.items():
        path = ("Condition", operator)
        if not OPERATOR.fullmatch(operator):
            ctx.at(
                st,
                "error",
                "INVALID_CONDITION_OPERATOR",
                f"Unknown condition operator {operator}.",
                *path,
            )
            continue
        if not isinstance(keys, dict) or not keys:
            ctx.at(
                st,
                "error",
                "INVALID_CONDITION",
                f"{operator} needs an object of condition keys.",
                *path,
            )
            continue
        for key, values in keys.items():
            where = (*path, key)
            if ":" not in key or key.startswith(":") or key.endswith(":"):
                ctx.at(
                    st,
                    "error",
                    "CONDITION_KEY_PREFIX",
                    f"Condition key {key} needs a vendor prefix, such as aws: or sts: (for "
                    "example aws:SourceIp).",
                    *where,
                )
            bad = [
                v
                for v in as_list(values)
                if not isinstance(v, str | bool | int | float) or v is None
            ]
            if bad or values == []:
                ctx.at(
                    st,
                    "error",
                    "INVALID_CONDITION_VALUE",
                    f"The value of {key} must be a string, a boolean, a number or a list of them, "
                    "not an object or null.",
                    *where,
                )
