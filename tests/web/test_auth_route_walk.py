"""Every registered route, for an anonymous visitor and each in-app role.

The walk enumerates `app.routes`, so routes added later are covered without editing this
file: each gets the answer its declaration (app.auth.permissions.required_role) calls for,
and the routes whose expected role we know are pinned in EXPECTED so a wrong declaration
fails too.
"""

import re

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from starlette.routing import Mount

from app.auth.permissions import Role, is_public, iter_routes, required_role
from app.models import AuditEvent
from app.wizard.service import wizard_for
from tests.conftest import add_user, csrf_token_for
from tests.web.headers import check_headers

# Pinned expectations for routes whose purpose we know: (method, path) -> role or "public".
EXPECTED = {
    ("GET", "/sign-in"): "public",
    ("POST", "/sign-in"): "public",
    ("POST", "/sign-out"): "public",
    ("GET", "/setup"): "public",
    ("POST", "/setup"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/roles"): Role.VIEWER,
    ("GET", "/roles/{name}"): Role.VIEWER,
    ("GET", "/roles/last-activity"): Role.VIEWER,
    ("GET", "/policy"): Role.VIEWER,
    ("GET", "/"): Role.VIEWER,
    ("GET", "/favicon.ico"): Role.VIEWER,
    ("POST", "/roles/refresh"): Role.OPERATOR,
    ("GET", "/users"): Role.ADMIN,
    ("POST", "/users"): Role.ADMIN,
    ("POST", "/users/{name}/role"): Role.ADMIN,
    ("POST", "/users/{name}/disable"): Role.ADMIN,
    ("POST", "/users/{name}/enable"): Role.ADMIN,
    ("POST", "/users/{name}/password"): Role.ADMIN,
    ("POST", "/users/{name}/accounts"): Role.ADMIN,
    # EC2 instances (issue 4): reading is a viewer's, attaching roles an operator's.
    ("GET", "/instances"): Role.VIEWER,
    ("POST", "/instances/review"): Role.OPERATOR,
    ("POST", "/instances/apply"): Role.OPERATOR,
    ("GET", "/instances/operations/{operation_id}"): Role.VIEWER,
    # Changing a role (issue 11): every form and action is an operator's.
    # Accounts and the cross-account role pair (issue 17).
    ("GET", "/accounts"): Role.VIEWER,
    ("GET", "/accounts/switch"): Role.VIEWER,
    ("GET", "/all-accounts/roles"): Role.VIEWER,
    ("GET", "/accounts/pairs/new"): Role.OPERATOR,
    ("POST", "/accounts/pairs/review"): Role.OPERATOR,
    ("POST", "/accounts/pairs"): Role.OPERATOR,
    ("GET", "/accounts/pairs/{operation_id}"): Role.VIEWER,
    ("GET", "/roles/{name}/trust/edit"): Role.OPERATOR,
    ("POST", "/roles/{name}/check/{kind}"): Role.OPERATOR,
    ("POST", "/roles/{name}/trust/review"): Role.OPERATOR,
    ("POST", "/roles/{name}/trust/apply"): Role.OPERATOR,
    ("GET", "/roles/{name}/trust/rebuild"): Role.OPERATOR,
    ("POST", "/roles/{name}/trust/rebuild"): Role.OPERATOR,
    ("POST", "/roles/{name}/trust/rebuild/preview"): Role.OPERATOR,
    ("POST", "/roles/{name}/trust/rebuild/picker"): Role.OPERATOR,
    ("GET", "/roles/{name}/settings/edit"): Role.OPERATOR,
    ("POST", "/roles/{name}/settings/review"): Role.OPERATOR,
    ("POST", "/roles/{name}/settings/apply"): Role.OPERATOR,
    ("GET", "/roles/{name}/revoke"): Role.OPERATOR,
    ("POST", "/roles/{name}/revoke"): Role.OPERATOR,
    ("GET", "/roles/{name}/delete"): Role.OPERATOR,
    ("POST", "/roles/{name}/delete"): Role.OPERATOR,
    ("GET", "/roles/{name}/policies/edit"): Role.OPERATOR,
    ("POST", "/roles/{name}/policies/review"): Role.OPERATOR,
    ("POST", "/roles/{name}/policies/apply"): Role.OPERATOR,
    ("GET", "/roles/{name}/inline/edit"): Role.OPERATOR,
    ("POST", "/roles/{name}/inline/review"): Role.OPERATOR,
    ("POST", "/roles/{name}/inline/apply"): Role.OPERATOR,
    ("GET", "/roles/{name}/inline/delete"): Role.OPERATOR,
    ("POST", "/roles/{name}/inline/delete"): Role.OPERATOR,
    ("GET", "/roles/{name}/boundary/edit"): Role.OPERATOR,
    ("POST", "/roles/{name}/boundary/review"): Role.OPERATOR,
    ("POST", "/roles/{name}/boundary/apply"): Role.OPERATOR,
    ("POST", "/roles/bulk-delete/review"): Role.OPERATOR,
    ("POST", "/roles/bulk-delete"): Role.OPERATOR,
    ("GET", "/operations/{operation_id}"): Role.VIEWER,
    ("GET", "/roles/{name}/tags/edit"): Role.OPERATOR,
    ("POST", "/roles/{name}/tags/review"): Role.OPERATOR,
    ("POST", "/roles/{name}/tags/apply"): Role.OPERATOR,
    # The create-role wizard (issue 3): every step that saves or creates is an operator's.
    ("GET", "/create-role"): Role.VIEWER,
    ("POST", "/create-role"): Role.OPERATOR,
    ("GET", "/create-role/{draft_id}/trust"): Role.VIEWER,
    ("POST", "/create-role/{draft_id}/trust"): Role.OPERATOR,
    ("POST", "/create-role/{draft_id}/trust/preview"): Role.OPERATOR,
    ("POST", "/create-role/{draft_id}/check/trust"): Role.OPERATOR,
    ("POST", "/create-role/{draft_id}/check/inline"): Role.OPERATOR,
    ("POST", "/create-role/{draft_id}/trust/picker"): Role.OPERATOR,
    ("POST", "/create-role/{draft_id}/discard"): Role.OPERATOR,
    ("GET", "/create-role/{draft_id}/permissions"): Role.VIEWER,
    ("GET", "/create-role/{draft_id}/permissions/document"): Role.VIEWER,
    ("POST", "/create-role/{draft_id}/permissions"): Role.OPERATOR,
    ("GET", "/create-role/{draft_id}/review"): Role.VIEWER,
    ("POST", "/create-role/{draft_id}/review"): Role.OPERATOR,
    ("POST", "/create-role/{draft_id}/create"): Role.OPERATOR,
    ("GET", "/create-role/{draft_id}/done"): Role.VIEWER,
    # The audit history (issue 5): read-only.
    ("GET", "/audit"): Role.VIEWER,
    ("GET", "/audit/export"): Role.VIEWER,
    ("GET", "/audit/events/{seq}"): Role.VIEWER,
    ("GET", "/audit/operations/{operation_id}"): Role.VIEWER,
    # The access review (issue 14): reading and exporting a viewer's; scanning again and
    # recording a decision an operator's.
    ("GET", "/access-review"): Role.VIEWER,
    ("GET", "/access-review/progress"): Role.VIEWER,
    ("GET", "/access-review/findings"): Role.VIEWER,
    ("GET", "/access-review/export"): Role.VIEWER,
    ("GET", "/access-review/roles/{name}"): Role.VIEWER,
    ("POST", "/access-review/scan"): Role.OPERATOR,
    ("POST", "/access-review/roles/{name}"): Role.OPERATOR,
    ("GET", "/access-review/roles/{name}/last-accessed"): Role.VIEWER,
    # Asking AWS for a last-accessed report changes nothing in the account.
    ("POST", "/access-review/roles/{name}/last-accessed"): Role.VIEWER,
}
IDENTITIES = (None, Role.VIEWER, Role.OPERATOR, Role.ADMIN)
WALK_USER = "walk-target"  # the user the /users/{name}/... routes act on
# Required query parameters, so those routes reach their handler instead of a 422.
SAMPLE_QUERY = {
    "/roles/last-activity": "name=web-app-ec2",
    "/policy": "arn=arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    "/roles/{name}/inline/delete": "policy=WalkInline",  # put on web-app-ec2 by walk_samples
    "/create-role/{draft_id}/permissions/document": (
        "arn=arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    ),
}


def endpoints(app):
    found = []
    for route in iter_routes(app.routes):
        if isinstance(route, Mount):
            assert route.path == "/static", f"unexpected mount {route.path}: decide its access"
            continue
        assert isinstance(route, APIRoute), f"{route!r} is not an APIRoute: no access check"
        for method in sorted(route.methods - {"HEAD"}):
            found.append((route, method))
    # Signing out ends the walking clients' sessions: do it last.
    return sorted(found, key=lambda rm: rm[0].path == "/sign-out")


def concrete(path, samples=None):
    """The route's path with real values for its parameters (unknown ones get "x", which the
    handlers answer with 404) and its required query parameters."""
    samples = samples or {"name": "web-app-ec2"}
    if path.startswith("/users/"):
        samples = {**samples, "name": WALK_USER}
    url = re.sub(r"{(\w+)(:\w+)?}", lambda m: samples.get(m.group(1), "x"), path)
    return url + (f"?{SAMPLE_QUERY[path]}" if path in SAMPLE_QUERY else "")


@pytest.fixture
def walk_samples(web_app, seeded, client_as, anonymous_client):
    """Path parameters naming real things, per identity: a draft of the identity's own
    (drafts are private to their author), an EC2 attach run and one of its audit events.

    Returns ({identity: client}, {identity: {parameter: value}})."""
    clients = {None: anonymous_client}
    for role in IDENTITIES[1:]:
        clients[role] = client_as(role.label)
    add_user(web_app, WALK_USER, "viewer")
    admin = clients[Role.ADMIN]
    bastion = next(i.instance_id for i in seeded.ec2().list_instances() if i.name == "bastion")
    form = {"action": "attach", "choice": "profile:reporting-ec2", "instance_id": bastion}
    started = admin.post(
        "/instances/apply",
        data={**form, "csrf_token": csrf_token_for(admin)},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text[:300]
    operation_id = started.headers["location"].rsplit("/", 1)[-1]
    web_app.state.instances.runner.wait(operation_id)
    with seeded.db.session() as session:
        seq = session.scalar(
            select(func.min(AuditEvent.seq)).where(AuditEvent.operation_id == operation_id)
        )
    assert seq is not None
    from app.audit.audited import AuditContext, Change

    seeded.audited.call(
        AuditContext(actor="walk"),
        Change("web-app-ec2"),
        seeded.iam.put_role_policy,
        role_name="web-app-ec2",
        policy_name="WalkInline",
        document={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
        },
    )
    seeded.access_scan.run_now()  # the access review's pages need a finished scan
    drafts = wizard_for(web_app.state, seeded).drafts
    samples = {}
    for role in IDENTITIES[1:]:
        samples[role] = {
            "name": "web-app-ec2",
            # The viewer's draft stands for one left from before the user became a viewer.
            "draft_id": drafts.create(f"{role.label}-user").id,
            "operation_id": operation_id,
            "seq": str(seq),
            "kind": "trust",
        }
    samples[None] = samples[Role.ADMIN]
    return clients, samples


def expected_for(route, method):
    pinned = EXPECTED.get((method, route.path))
    declared = "public" if is_public(route) else required_role(route, method)
    if pinned is not None:
        assert declared == pinned, f"{method} {route.path} declares {declared}, not {pinned}"
    return declared


def call(client, method, url, *, htmx=False):
    headers = (
        {"HX-Request": "true", "HX-Current-URL": "http://testserver/roles?q=a"} if htmx else {}
    )
    data = None
    if method not in ("GET", "HEAD"):
        headers["X-CSRF-Token"] = csrf_token_for(client)
        data = {}
    return client.request(method, url, headers=headers, data=data, follow_redirects=False)


def refused_by_guard(response):
    """The central access check's answers (public routes may still refuse for their own
    reasons, e.g. an invalid setup link)."""
    location = response.headers.get("location", "")
    return (
        (response.status_code == 303 and location.startswith("/sign-in?next="))
        or (response.status_code == 401 and "You are not signed in" in response.text)
        or (response.status_code == 403 and "Your RoleDesk role" in response.text)
    )


def test_every_route_answers_each_identity_as_declared(web_app, walk_samples):
    clients, samples = walk_samples
    routes = endpoints(web_app)
    assert len(routes) >= len(EXPECTED)
    assert {(m, r.path) for r, m in routes} >= set(EXPECTED)
    for route, method in routes:
        needed = expected_for(route, method)
        for identity in IDENTITIES:
            url = concrete(route.path, samples[identity])
            response = call(clients[identity], method, url)
            where = f"{method} {url} as {identity.label if identity else 'anonymous'}"
            check_headers(response)  # every answer of every route, refusals included
            assert response.headers["cache-control"] == "no-store", where
            if needed == "public":
                assert not refused_by_guard(response), where
            elif identity is not None and identity >= needed:
                assert response.status_code not in (401, 403), (where, response.text[:300])
                # The sample values name real things: the handler itself answered (a GET
                # succeeds; a POST with an empty form may be refused, 422, by its own checks).
                assert response.status_code != 404, (where, response.text[:300])
                if method == "GET":
                    assert response.status_code < 400, (where, response.text[:300])
            elif identity is None and method == "GET":
                assert response.status_code == 303, where
                assert response.headers["location"].startswith("/sign-in?next="), where
            elif identity is None:
                assert response.status_code == 401, where
            else:
                assert response.status_code == 403, where
                assert f"needs {needed.label}" in response.text, where


def test_htmx_requests_from_anonymous_get_401_and_hx_redirect(web_app, anonymous_client):
    for route, method in endpoints(web_app):
        if expected_for(route, method) == "public":
            continue
        response = call(anonymous_client, method, concrete(route.path), htmx=True)
        assert response.status_code == 401, (method, route.path)
        assert response.headers["HX-Redirect"] == "/sign-in?next=%2Froles%3Fq%3Da"


def test_anonymous_redirect_keeps_the_page_asked_for(anonymous_client):
    response = anonymous_client.get("/roles?q=ec2&page=1", follow_redirects=False)
    assert response.headers["location"] == "/sign-in?next=%2Froles%3Fq%3Dec2%26page%3D1"


def test_forbidden_page_explains_and_shows_nothing_private(client_as):
    viewer = client_as("viewer")
    response = viewer.get("/users")
    assert response.status_code == 403
    assert "Your RoleDesk role (viewer) does not allow this; it needs admin." in response.text
    assert "operator-user" not in response.text and "/users/" not in response.text


def test_admin_only_routes_refuse_operator_before_any_change(client_as, web_app):
    operator = client_as("operator")
    client_as("viewer")
    token = csrf_token_for(operator)
    response = operator.post("/users/viewer-user/role", data={"role": "admin", "csrf_token": token})
    assert response.status_code == 403
    assert web_app.state.auth.users.get("viewer-user").role is Role.VIEWER


@pytest.mark.parametrize("path", ["/roles", "/users", "/roles/web-app-ec2"])
def test_unknown_or_forged_session_cookie_is_anonymous(anonymous_client, path):
    anonymous_client.cookies.set("roledesk_session", "forged-" + "a" * 40)
    response = anonymous_client.get(path, follow_redirects=False)
    assert response.status_code == 303


def test_routes_added_later_are_protected_by_default(web_app, client_as, anonymous_client):
    """What other features' routes get without declaring anything (and with require)."""
    from fastapi import APIRouter, Depends

    from app.auth.permissions import require
    from app.web.deps import AuditContextDep

    router = APIRouter()

    @router.get("/later/read")
    def later_read(ctx: AuditContextDep) -> dict:
        return {"actor": ctx.actor}

    @router.post("/later/change")
    def later_change() -> dict:
        return {"changed": True}

    @router.post("/later/destroy", dependencies=[Depends(require(Role.ADMIN))])
    def later_destroy() -> dict:
        return {"destroyed": True}

    web_app.include_router(router)
    viewer, operator, admin = (client_as(r) for r in ("viewer", "operator", "admin"))
    assert anonymous_client.get("/later/read", follow_redirects=False).status_code == 303
    assert viewer.get("/later/read").json() == {"actor": "viewer-user"}  # audit actor
    for client, change, destroy in ((viewer, 403, 403), (operator, 200, 403), (admin, 200, 200)):
        token = {"X-CSRF-Token": csrf_token_for(client)}
        assert client.post("/later/change", headers=token).status_code == change
        assert client.post("/later/destroy", headers=token).status_code == destroy
    assert call(anonymous_client, "POST", "/later/change").status_code == 401


@pytest.mark.parametrize(
    ("page", "change_button", "note"),
    [
        # An operator with nothing to resume gets step 1 at once; a viewer, why not.
        ("/create-role", ">Next</button>", 'id="cannot-create"'),
        ("/instances", ">Attach role</button>", 'id="cannot-change"'),
        ("/roles", "Refresh list</button>", None),
    ],
)
def test_viewers_are_not_offered_buttons_they_may_not_use(client_as, page, change_button, note):
    """A viewer would only get "not allowed" from these buttons: they see why instead."""
    viewer_page = client_as("viewer").get(page)
    operator_page = client_as("operator").get(page)
    assert viewer_page.status_code == operator_page.status_code == 200
    assert change_button not in viewer_page.text
    assert change_button in operator_page.text
    if note is not None:
        assert note in viewer_page.text and note not in operator_page.text
        assert "Your RoleDesk role (viewer)" in viewer_page.text
