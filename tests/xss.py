"""XSS payloads and the checker for every field RoleDesk echoes.

To cover a new field, add an entry to ECHO_FIELDS: a function that puts `payload` into the
field (through RoleDesk's own paths where there is one) and returns the URL of the page that
shows it. tests/web/test_xss.py checks the HTML of every (field, payload) pair and
tests/browser/test_auth_journey.py opens the pages in Chromium.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from bs4 import BeautifulSoup

from app.wizard.trust import service_trust

MARK = "roledeskxss"
PAYLOADS = [
    f"<script>window.{MARK}=1</script>",
    f'"><img src=x onerror="window.{MARK}=1">',
    f"'><svg onload=window.{MARK}=1>",
    f"</textarea><script>window.{MARK}=2</script>",
    f"javascript:window.{MARK}=3",
    f'<a href="javascript:window.{MARK}=4">x</a>',
    f"{{{{7*7}}}}<b hx-get=/users hx-trigger=load>{MARK}</b>",
    f"<iframe srcdoc='<script>parent.{MARK}=5</script>'></iframe>",
]

Putter = Callable[[Any, str], str]  # (services, payload) -> URL showing it


def assert_escaped(html: str, payload: str) -> None:
    """The payload is shown as text, never as markup: no element, attribute or handler from
    it exists in the parsed page."""
    if "<" in payload:
        assert payload not in html, "payload appears unescaped"
    page = BeautifulSoup(html, "html.parser")
    for element in page.find_all(True):
        for name, value in element.attrs.items():
            assert not name.lower().startswith("on"), f"handler attribute {name} in {element}"
            text = " ".join(value) if isinstance(value, list) else str(value)
            if name in ("href", "src", "action", "hx-get", "hx-post", "formaction"):
                # Our own links may carry the payload URL-encoded in a query string, never as
                # a script URL or raw markup.
                url = text.strip().lower()
                assert not url.startswith(("javascript:", "data:", "vbscript:")), (name, text)
                assert "<" not in text, f"raw markup in {name} of <{element.name}>"
            assert name != "srcdoc", f"srcdoc on <{element.name}>"
        if element.name in ("script", "iframe", "svg", "img"):
            assert MARK not in str(element), f"payload produced <{element.name}>"
    assert "7*7" not in payload or "49" + "<b" not in html, "template injection evaluated"


# Each entry: (client signed in as admin, services, payload) -> HTML of the page showing it.
EchoField = Callable[[Any, Any, str], str]

TRUST = service_trust("ec2.amazonaws.com")


def _role_with(services: Any, **kwargs: Any) -> str:
    """Creates a role through the audited path; returns its name."""
    import uuid

    from app.audit.audited import AuditContext, Change

    name = f"xss-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:iam::{services.identity.account}:role/{name}"
    services.audited.call(
        AuditContext(),
        Change(arn),
        services.iam.create_role,
        name=name,
        trust_policy=TRUST,
        **kwargs,
    )
    return name


def role_description(client: Any, services: Any, payload: str) -> str:
    name = _role_with(services, description=payload)
    return str(client.get(f"/roles/{name}").text)


def role_tags(client: Any, services: Any, payload: str) -> str:
    from app.aws.types import Tag

    name = _role_with(services, tags=(Tag("note", payload),))
    return str(client.get(f"/roles/{name}").text)


def inline_policy_json(client: Any, services: Any, payload: str) -> str:
    from app.audit.audited import AuditContext, Change

    name = _role_with(services)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": payload}},
            }
        ],
    }
    services.audited.call(
        AuditContext(), Change(name), services.iam.put_role_policy, name, "xss", document
    )
    return str(client.get(f"/roles/{name}").text)


def roles_search_box(client: Any, services: Any, payload: str) -> str:
    full = client.get("/roles", params={"q": payload}).text
    fragment = client.get("/roles", params={"q": payload}, headers={"HX-Request": "true"}).text
    return str(full + fragment)


def aws_error_message(client: Any, services: Any, payload: str) -> str:
    from app.aws.errors import AccessDenied

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise AccessDenied(payload, payload, request_id=payload, operation="GetRole")

    original = services.iam.get_role
    services.iam.get_role = denied
    try:
        full = client.get("/roles/web-app-ec2").text
        htmx = client.get("/roles/web-app-ec2", headers={"HX-Request": "true"}).text
    finally:
        services.iam.get_role = original
    return str(full + htmx)


def user_name_on_users_page(client: Any, services: Any, payload: str) -> str:
    from tests.conftest import csrf_token_for

    form = {
        "name": payload,
        "role": "viewer",
        "password": "kestrel harbour 71",
        "confirm": "kestrel harbour 71",
    }
    return str(client.post("/users", data={**form, "csrf_token": csrf_token_for(client)}).text)


def user_name_on_sign_in(client: Any, services: Any, payload: str) -> str:
    from fastapi.testclient import TestClient

    from tests.conftest import sign_in

    with TestClient(client.app) as anonymous:
        return str(sign_in(anonymous, payload, "whatever-password").text)


def sign_in_next(client: Any, services: Any, payload: str) -> str:
    from urllib.parse import quote

    from fastapi.testclient import TestClient

    with TestClient(client.app) as anonymous:
        page = anonymous.get("/roles?q=" + quote(payload[:60]), follow_redirects=True)
        return str(page.text)


ECHO_FIELDS: dict[str, EchoField] = {
    "role description": role_description,
    "role tags": role_tags,
    "inline policy JSON": inline_policy_json,
    "roles search box": roles_search_box,
    "AWS error message": aws_error_message,
    "user name (users page)": user_name_on_users_page,
    "user name (sign-in)": user_name_on_sign_in,
    "page to return to after sign-in": sign_in_next,
}


# The create-role wizard (issue 3) --------------------------------------------------------


def _post(client: Any, url: str, data: dict[str, Any], **kwargs: Any) -> Any:
    from tests.conftest import csrf_token_for

    return client.post(url, data={"csrf_token": csrf_token_for(client), **data}, **kwargs)


def _both(client: Any, url: str) -> str:
    """The full page and its htmx fragment."""
    full = client.get(url).text
    fragment = client.get(url, headers={"HX-Request": "true"}).text
    return str(full + fragment)


def _draft(client: Any, trust: dict[str, str] | None = None) -> str:
    """A new draft through the wizard's own form; step 1 filled with `trust` if given."""
    first = {"entity_type": "service", "service": "lambda.amazonaws.com", "nav": "preview"}
    response = _post(client, "/create-role/new/trust", first, follow_redirects=False)
    draft = str(response.headers["location"].split("/")[2])
    if trust is not None:
        _post(client, f"/create-role/{draft}/trust", {**trust, "nav": "save"})
    return draft


EC2_TRUST = {"entity_type": "service", "service": "ec2.amazonaws.com"}


def _trust_step(client: Any, values: dict[str, str]) -> str:
    """Step 1 posted with `values` (the 422 or saved page), then the step shown again."""
    draft = _draft(client)
    posted = _post(client, f"/create-role/{draft}/trust", {**values, "nav": "next"}).text
    preview = _post(
        client, f"/create-role/{draft}/trust/preview", values, headers={"HX-Request": "true"}
    ).text
    return str(posted + preview + _both(client, f"/create-role/{draft}/trust"))


def wizard_external_id(client: Any, services: Any, payload: str) -> str:
    return _trust_step(
        client,
        {
            "entity_type": "account",
            "account_choice": "other",
            "account_id": "444455556666",
            "require_external_id": "1",
            "external_id": payload,
        },
    )


def _github(services: Any, **fields: str) -> dict[str, str]:
    provider = (
        f"arn:aws:iam::{services.identity.account}:oidc-provider/"
        "token.actions.githubusercontent.com"
    )
    values = {"github_org": "example-org", "github_repo": "shop", "github_branch": ""}
    return {"entity_type": "web_identity", "web_provider": provider, **values, **fields}


def wizard_github_org(client: Any, services: Any, payload: str) -> str:
    return _trust_step(client, _github(services, github_org=payload))


def wizard_github_repo(client: Any, services: Any, payload: str) -> str:
    return _trust_step(client, _github(services, github_repo=payload))


def wizard_github_branch(client: Any, services: Any, payload: str) -> str:
    return _trust_step(client, _github(services, github_branch=payload))


def _saml(services: Any, **fields: str) -> dict[str, str]:
    provider = f"arn:aws:iam::{services.identity.account}:saml-provider/CorpOkta"
    return {"entity_type": "saml", "saml_provider": provider, "saml_access": "console", **fields}


def wizard_saml_attribute(client: Any, services: Any, payload: str) -> str:
    return _trust_step(client, _saml(services, saml_attribute=payload, saml_value="x"))


def wizard_saml_value(client: Any, services: Any, payload: str) -> str:
    return _trust_step(client, _saml(services, saml_attribute="SAML:sub", saml_value=payload))


def wizard_custom_trust_json(client: Any, services: Any, payload: str) -> str:
    broken = _trust_step(client, {"entity_type": "custom", "custom_policy": payload})
    document = {**TRUST, "Statement": [{**TRUST["Statement"][0], "Sid": "x"}]}
    statement = dict(document["Statement"][0])
    statement["Condition"] = {"StringEquals": {"sts:ExternalId": payload}}
    valid = json.dumps({**TRUST, "Statement": [statement]})
    return broken + _trust_step(client, {"entity_type": "custom", "custom_policy": valid})


def _permissions(client: Any, values: dict[str, str]) -> str:
    draft = _draft(client, EC2_TRUST)
    url = f"/create-role/{draft}/permissions"
    refused = _post(client, url, {**values, "nav": "next"}).text
    return str(refused + _both(client, url))


def wizard_inline_policy_name(client: Any, services: Any, payload: str) -> str:
    return _permissions(client, {"inline_name": payload, "inline_policy": json.dumps(INLINE)})


def wizard_inline_policy_json(client: Any, services: Any, payload: str) -> str:
    broken = _permissions(client, {"inline_name": "Reports", "inline_policy": payload})
    statement = {**INLINE["Statement"][0], "Condition": {"StringEquals": {"aws:username": payload}}}
    valid = json.dumps({**INLINE, "Statement": [statement]})
    return broken + _permissions(client, {"inline_name": "Reports", "inline_policy": valid})


def wizard_policy_search(client: Any, services: Any, payload: str) -> str:
    draft = _draft(client, EC2_TRUST)
    return _both(client, f"/create-role/{draft}/permissions?" + urlencode({"q": payload}))


def _review(client: Any, details: dict[str, Any], *, create: bool = False) -> str:
    """Step 3 saved with `details` (or "Create role" pressed), then the step shown again."""
    draft = _draft(client, EC2_TRUST)
    form = {"name": "xss-review", "path": "/", "description": "", "max_session_hours": "1"}
    action = "create" if create else "review"
    posted = _post(client, f"/create-role/{draft}/{action}", {**form, **details, "nav": "save"})
    return str(posted.text + _both(client, f"/create-role/{draft}/review"))


def wizard_role_name(client: Any, services: Any, payload: str) -> str:
    """An invalid name: refused (422) beside the field, the name echoed in it."""
    return _review(client, {"name": payload}, create=True)


def wizard_description(client: Any, services: Any, payload: str) -> str:
    return _review(client, {"description": payload}, create=True)


def wizard_path(client: Any, services: Any, payload: str) -> str:
    return _review(client, {"path": payload}, create=True)


def wizard_tag_key(client: Any, services: Any, payload: str) -> str:
    return _review(client, {"tag_key": payload, "tag_value": "v"}, create=True)


def wizard_tag_value(client: Any, services: Any, payload: str) -> str:
    return _review(client, {"tag_key": "note", "tag_value": payload})


# EC2 instances (issue 4) ------------------------------------------------------------------


def instances_filters(client: Any, services: Any, payload: str) -> str:
    short = payload[:32]  # the region and state filters' bound; name and role allow 64
    pages = [
        _both(client, "/instances?" + urlencode({field: payload[:64]}))
        for field in ("name", "role")
    ]
    pages += [_both(client, "/instances?" + urlencode({f: short})) for f in ("state", "region")]
    return "".join(pages)


def instances_review(client: Any, services: Any, payload: str) -> str:
    bastion = next(i.instance_id for i in services.ec2().list_instances() if i.name == "bastion")
    forms = [
        {"action": "attach", "choice": "profile:web-app-ec2", "instance_id": payload},
        {"action": "attach", "choice": payload, "instance_id": bastion},
        {"action": payload, "instance_id": bastion, "name": payload, "region": payload},
        {"action": "detach", "instance_id": bastion, "confirm": payload},
    ]
    pages = [_post(client, "/instances/review", form).text for form in forms]
    pages += [_post(client, "/instances/apply", form).text for form in forms]
    return "".join(pages)


# Audit history (issue 5) ------------------------------------------------------------------


def audit_filters(client: Any, services: Any, payload: str) -> str:
    pages = [
        _both(client, "/audit?" + urlencode({field: payload}))
        for field in ("actor", "action", "target", "q", "since")
    ]
    return "".join(pages)


def audit_event_params(client: Any, services: Any, payload: str) -> str:
    """A role created through the wizard with the payload in its description (AWS allows
    any printable text there): its CreateRole event's detail page shows the parameters."""
    import uuid

    from sqlalchemy import select

    from app.models import AuditEvent

    name = f"xss-audit-{uuid.uuid4().hex[:8]}"
    draft = _draft(client, EC2_TRUST)
    details = {"name": name, "path": "/", "description": payload, "max_session_hours": "1"}
    created = _post(client, f"/create-role/{draft}/create", details)
    errors = BeautifulSoup(created.text, "html.parser").select(".field-error")
    assert created.status_code == 200, [e.text for e in errors if e.text.strip()]
    from tests.web.test_wizard_flow import finish_create

    finish_create(client, f"/create-role/{draft}/done")  # its calls are all in the ledger
    with services.db.session() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "iam:CreateRole", AuditEvent.target.endswith(f"/{name}")
            )
        ).first()
        assert event is not None
        seq, operation_id = event.seq, event.operation_id
    event_page = client.get(f"/audit/events/{seq}").text
    request = BeautifulSoup(event_page, "html.parser").select_one("#event-request")
    assert request is not None and MARK in request.text  # the params, shown as text
    return str(
        event_page
        + _both(client, f"/audit/operations/{operation_id}")
        + _both(client, "/audit?" + urlencode({"q": payload[:60]}))
    )


INLINE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
}

ECHO_FIELDS.update(
    {
        "wizard role name (refused)": wizard_role_name,
        "wizard description": wizard_description,
        "wizard path": wizard_path,
        "wizard tag key": wizard_tag_key,
        "wizard tag value": wizard_tag_value,
        "wizard external ID": wizard_external_id,
        "wizard GitHub organisation": wizard_github_org,
        "wizard GitHub repository": wizard_github_repo,
        "wizard GitHub branch": wizard_github_branch,
        "wizard SAML attribute": wizard_saml_attribute,
        "wizard SAML value": wizard_saml_value,
        "wizard custom trust policy JSON": wizard_custom_trust_json,
        "wizard inline policy name": wizard_inline_policy_name,
        "wizard inline policy JSON": wizard_inline_policy_json,
        "wizard policy search box": wizard_policy_search,
        "EC2 filters (name, role, state, region)": instances_filters,
        "EC2 review and apply forms": instances_review,
        "audit filters (actor, action, target, text, time)": audit_filters,
        "audit event detail and operation (params)": audit_event_params,
    }
)
