"""Roles list and role detail pages, as in the IAM console."""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.accounts.urls import account_base
from app.audit.activity import role_activity
from app.auth.guard import home_base
from app.aws.errors import NotFound
from app.aws.types import (
    AttachedPolicy,
    InlinePolicy,
    InstanceProfile,
    PolicyDocument,
    Role,
    RoleLastUsed,
)
from app.instances.role_instances import RegionScan, RoleInstances
from app.instances.routes import instances_state
from app.review.routes import last_accessed_context, wait_for_report
from app.roles.applied import APPLIED_PATTERN, SECTION_PATTERN, applied_change
from app.roles.changes import REVOKE_POLICY, revoked_at
from app.roles.lookup_budget import PER_REQUEST, LookupBudget
from app.roles.trust import summarise_trust
from app.roles.usage import usages
from app.services import Services
from app.web.deps import RendererDep, ServicesDep
from app.web.params import (
    POLICY_ARN_MAX,
    POLICY_ARN_PATTERN,
    ROLE_NAME_RULE,
    is_role_name,
)
from app.web.templating import redirect_after_post

router = APIRouter()

PER_PAGE_CHOICES = (25, 50, 100)


def pretty_json(document: PolicyDocument | str) -> str:
    if isinstance(document, str):
        return document
    return json.dumps(document, indent=2)


@dataclass(frozen=True)
class RolesQuery:
    """The roles list's query string, bounded so no input can fail the page."""

    q: str
    sort: str
    order: str
    page: int
    per_page: int
    activity: bool

    def url(self, **changes: Any) -> str:
        values = {
            "q": self.q,
            "sort": self.sort,
            "order": self.order,
            "page": self.page,
            "per_page": self.per_page,
            **changes,
        }
        return "/roles?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=308, headers={"Location": "/static/favicon.svg"})


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    """The roles page of the account in the URL, else of where the user starts (the hub,
    or a limited user's first account: app.auth.guard.home_base)."""
    base = account_base(request.scope) or home_base(
        request.app, getattr(request.state, "user", None)
    )
    return Response(status_code=303, headers={"Location": base + "/roles"})


@router.get("/roles", response_class=HTMLResponse)
def list_roles(
    request: Request,
    services: ServicesDep,
    render: RendererDep,
    q: Annotated[str, Query(max_length=64)] = "",
    sort: str = "name",
    order: str = "asc",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: int = 25,
    activity: bool = False,
) -> Response:
    query = RolesQuery(
        q=q,
        sort=sort if sort in ("name", "created") else "name",
        order="desc" if order == "desc" else "asc",
        page=page,
        per_page=per_page if per_page in PER_PAGE_CHOICES else 25,
        activity=activity,
    )
    result = services.inventory.page(
        search=query.q,
        sort=query.sort,
        descending=query.order == "desc",
        page=query.page,
        per_page=query.per_page,
    )
    names = [r.name for r in result.rows]
    # RoleLastUsed needs GetRole per role: without JavaScript (activity=1) fetch it now;
    # otherwise show what is known and let htmx fill in the rest after the page is shown.
    last_used = (
        _bounded_last_used(request, services, names)
        if query.activity
        else services.inventory.cached_last_used(names)
    )
    missing = [n for n in names if n not in last_used]
    return render.page(
        request,
        "roles/index.html",
        {"result": result, "query": query, "last_used": last_used, "missing": missing},
        block="role_results",
    )


@router.get("/roles/last-activity", response_class=HTMLResponse)
def roles_last_activity(
    request: Request,
    services: ServicesDep,
    render: RendererDep,
    name: Annotated[list[str], Query(max_length=PER_REQUEST)],  # the list's length
) -> Response:
    """Out-of-band cells for the roles list's Last activity column (htmx only)."""
    names = name[:PER_REQUEST]
    if not all(is_role_name(n) for n in names):
        raise HTTPException(422, f"A role name is {ROLE_NAME_RULE}.")
    last_used = _bounded_last_used(request, services, names)
    return render.page(
        request, "roles/_last_activity.html", {"names": names, "last_used": last_used}
    )


def _bounded_last_used(
    request: Request, services: Services, names: list[str]
) -> dict[str, RoleLastUsed | None]:
    """RoleLastUsed for the roles the list knows, within the user's GetRole budget
    (app.roles.lookup_budget); names left out of the answer are shown as not loaded."""
    inventory = services.inventory
    known = [n for n in dict.fromkeys(names[:PER_REQUEST]) if inventory.find(n) is not None]
    found = inventory.cached_last_used(known)
    missing = [n for n in known if n not in found]
    user = getattr(request.state, "user", None)
    budget: LookupBudget = request.app.state.lookup_budget
    allowed = budget.take(user.name if user else "", len(missing))
    if allowed:
        found.update(inventory.fetch_last_used(missing[:allowed]))
    return found


@router.post("/roles/refresh")
def refresh_roles(request: Request, services: ServicesDep) -> Response:
    """Reload the roles list from AWS now."""
    services.inventory.refresh()
    return redirect_after_post(request, "/roles")


def read_role_page(
    services: Services, name: str, *, documents: bool = True, scan: RegionScan | None = None
) -> tuple[Role, list[AttachedPolicy], list[InlinePolicy], list[InstanceProfile], RoleInstances]:
    """The role page's AWS reads side by side: GetRole, ListAttachedRolePolicies,
    ListRolePolicies then each GetRolePolicy, ListInstanceProfilesForRole then the EC2
    look-up in each region of `scan` (none without it). The page costs its longest chain of
    reads, not their sum. Without `documents` the inline policies come back by name only
    (their documents empty)."""
    iam = services.iam
    with ThreadPoolExecutor(max_workers=8) as pool:
        role = pool.submit(iam.get_role, name)
        attached = pool.submit(iam.list_attached_role_policies, name)
        names = pool.submit(iam.list_role_policy_names, name)
        profiles = pool.submit(iam.list_instance_profiles_for_role, name)
        inline = [
            pool.submit(iam.get_role_policy, name, p) if documents else _done(InlinePolicy(p, {}))
            for p in names.result()
        ]
        found_profiles = profiles.result()
        instances = (
            pool.submit(scan.instances, found_profiles)
            if scan is not None
            else _done(RoleInstances())
        )
        return (
            role.result(),
            attached.result(),
            [d.result() for d in inline],
            found_profiles,
            instances.result(),
        )


def region_scan(request: Request, services: Services) -> RegionScan:
    """The EC2 look-up over every region RoleDesk knows (the EC2 instances page's list)."""
    return RegionScan(services.ec2, instances_state(request, services).regions(services))


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


@router.get("/roles/{name}", response_class=HTMLResponse)
def role_detail(
    request: Request,
    name: str,
    services: ServicesDep,
    render: RendererDep,
    # The notice after a change (app.roles.applied): refused before any AWS read unless shaped
    # as the change's redirect writes them.
    applied: Annotated[str, Query(max_length=36, pattern=APPLIED_PATTERN)] = "",
    section: Annotated[str, Query(max_length=16, pattern=SECTION_PATTERN)] = "",
) -> Response:
    if not is_role_name(name):  # cannot exist in AWS: never sent there
        raise HTTPException(
            404, f"There is no role named {name[:64]!r}: a role name is {ROLE_NAME_RULE}."
        )
    wait_for_report(request, services, name)  # before reading the role: the page is fresh
    try:
        role, attached, inline, profiles, role_instances = read_role_page(
            services, name, scan=region_scan(request, services)
        )
    except NotFound:
        raise HTTPException(404, f"There is no role named {name}.") from None
    activity = role_activity(services, role)
    return render.page(
        request,
        "roles/detail.html",
        {
            "role": role,
            "trusted": summarise_trust(role.trust_policy),
            "trust_json": pretty_json(role.trust_policy),
            "attached": attached,
            "inline": [(p.name, pretty_json(p.document)) for p in inline],
            "profiles": profiles,
            "role_instances": role_instances,
            "role_instances_region": services.settings.aws_region,
            "activity": activity,
            "applied": applied_change(services.db, applied, section) if applied else None,
            "usages": usages(role, services.settings.aws_region),
            "last_revoked": next(
                (revoked_at(p.document) for p in inline if p.name == REVOKE_POLICY), None
            ),
            # Services last accessed (IAM Access Advisor): what is held, asked for by button.
            **last_accessed_context(services, role, "role"),
        },
    )


@router.get("/policy", response_class=HTMLResponse)
def policy_detail(
    request: Request,
    services: ServicesDep,
    render: RendererDep,
    arn: Annotated[str, Query(max_length=POLICY_ARN_MAX, pattern=POLICY_ARN_PATTERN)],
) -> Response:
    """A managed policy and its default version's document."""
    policy = services.iam.get_policy(arn)
    document = services.iam.get_policy_document(arn, policy.default_version_id)
    return render.page(
        request, "policies/detail.html", {"policy": policy, "document": pretty_json(document)}
    )
