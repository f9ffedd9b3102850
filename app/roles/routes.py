"""Roles list and role detail pages, as in the IAM console."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.audit.activity import role_activity
from app.aws.errors import NotFound
from app.aws.types import PolicyDocument, RoleLastUsed
from app.instances.listing import role_blast_radius
from app.roles.trust import summarise_trust
from app.web.deps import RendererDep, ServicesDep
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
def home() -> Response:
    return Response(status_code=303, headers={"Location": "/roles"})


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
        services.inventory.fetch_last_used(names)
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
    name: Annotated[list[str], Query(max_length=64)],
) -> Response:
    """Out-of-band cells for the roles list's Last activity column (htmx only)."""
    names = name[:100]
    last_used: dict[str, RoleLastUsed | None] = services.inventory.fetch_last_used(names)
    return render.page(
        request, "roles/_last_activity.html", {"names": names, "last_used": last_used}
    )


@router.post("/roles/refresh")
def refresh_roles(request: Request, services: ServicesDep) -> Response:
    """Reload the roles list from AWS now."""
    services.inventory.refresh()
    return redirect_after_post(request, "/roles")


@router.get("/roles/{name}", response_class=HTMLResponse)
def role_detail(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    if len(name) > 64:
        raise HTTPException(404, f"There is no role named {name[:64]}….")
    iam = services.iam
    try:
        role = iam.get_role(name)
    except NotFound:
        raise HTTPException(404, f"There is no role named {name}.") from None
    attached = iam.list_attached_role_policies(name)
    inline = [iam.get_role_policy(name, p) for p in iam.list_role_policy_names(name)]
    profiles = iam.list_instance_profiles_for_role(name)
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
            "role_instances": role_blast_radius(services.ec2(), profiles),
            "role_instances_region": services.settings.aws_region,
            "activity": activity,
        },
    )


@router.get("/policy", response_class=HTMLResponse)
def policy_detail(
    request: Request,
    services: ServicesDep,
    render: RendererDep,
    arn: Annotated[str, Query(min_length=20, max_length=2048, pattern=r"^arn:aws[\w-]*:iam::")],
) -> Response:
    """A managed policy and its default version's document."""
    policy = services.iam.get_policy(arn)
    document = services.iam.get_policy_document(arn, policy.default_version_id)
    return render.page(
        request, "policies/detail.html", {"policy": policy, "document": pretty_json(document)}
    )
