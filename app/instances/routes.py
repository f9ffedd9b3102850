"""EC2 instances page: see the role each instance carries; attach, replace or detach one.

Flow (works without JavaScript; htmx filters, selects and polls on top):
GET /instances -> POST /instances/review (what will happen, the roles being replaced, the
typed "Detach" confirmation) -> POST /instances/apply (starts a background run, 303) ->
GET /instances/operations/{id} (progress until every association is `associated`).
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from app.audit.audited import AuditContext
from app.aws.errors import AwsError
from app.aws.types import Role
from app.instances.catalog import (
    ProfileCatalog,
    RoleChoice,
    find_choice,
    fresh_choices,
    role_choices,
)
from app.instances.forms import ChangeForm, clean_query, valid_operation_id
from app.instances.listing import (
    INSTANCE_STATES,
    NO_ROLE,
    InstanceRow,
    InstancesQuery,
    fetch_rows,
    page_of,
)
from app.instances.operations import OperationRunner, OperationStatus, load_status
from app.instances.service import ATTACH, MAX_INSTANCES, plan_change
from app.policy import Finding
from app.policy.role_review import role_findings
from app.services import PROFILES, Services
from app.web.check_progress import wait_for_news, wants_wait
from app.web.deps import AuditContextDep, RendererDep, ServicesDep
from app.web.templating import Renderer, redirect_after_post

router = APIRouter()

_STATE_LOCK = threading.Lock()


@dataclass
class InstancesState:
    """Per-app memory of the instances pages: profiles, regions and background runs."""

    catalog: ProfileCatalog
    runner: OperationRunner = field(default_factory=OperationRunner)
    _regions: list[str] | None = None

    def regions(self, services: Services) -> list[str]:
        """DescribeRegions once per process: the list changes only when AWS opens a region."""
        default = services.settings.aws_region
        if self._regions is None:
            try:
                found = services.ec2().list_regions()
            except AwsError:  # e.g. no ec2:DescribeRegions: offer the default region only
                return [default]
            self._regions = found if default in found else sorted([*found, default])
        return self._regions


def instances_state(request: Request, services: Services) -> InstancesState:
    with _STATE_LOCK:
        if services.is_member:  # a member account's own profiles (app.accounts.context)
            held = services.per_account.get("instances")
            if held is None:
                held = services.per_account["instances"] = InstancesState(
                    ProfileCatalog(services.iam)
                )
                services.audited.on_success(held.catalog.on_change)
                _follow_profiles(services, held.catalog)
            assert isinstance(held, InstancesState)
            return held
        state: InstancesState | None = getattr(request.app.state, "instances", None)
        if state is None:
            state = InstancesState(ProfileCatalog(services.iam))
            services.audited.on_success(state.catalog.on_change)
            _follow_profiles(services, state.catalog)
            request.app.state.instances = state
        return state


def _follow_profiles(services: Services, catalog: ProfileCatalog) -> None:
    """Another process changed a profile of this account: read the profiles again."""
    if services.shared is None:
        return
    mine = services.shared_key

    def on_notice(key: str, _item: str | None) -> None:
        if key == mine:
            catalog.invalidate()

    services.shared.subscribe(PROFILES, on_notice)


def _roles(services: Services) -> list[Role]:
    """Every role, from the in-memory roles list (no extra IAM call when it is loaded)."""
    return [row.role for row in services.inventory.page(per_page=1_000_000).rows]


def _choices(services: Services, state: InstancesState) -> list[RoleChoice]:
    return role_choices(state.catalog.profiles(), _roles(services))


def _render_index(
    request: Request,
    services: Services,
    render: Renderer,
    query: InstancesQuery,
    *,
    selected: set[str] | None = None,
    select_all: bool = False,
    form: ChangeForm | None = None,
    status_code: int = 200,
) -> Response:
    state = instances_state(request, services)
    services.catch_up()  # before the profiles and roles held in memory are read
    held = services.instances.snapshot(query.region, warm=state.catalog.profiles)
    result = page_of(held.rows(state.catalog.by_arn), query)
    if select_all:
        selected = {r.instance_id for r in result.rows if r.choosable}
    choices = _choices(services, state)
    filter_roles = sorted({c.role_name for c in choices if c.profile}, key=str.lower)
    return render.page(
        request,
        "instances/index.html",
        {
            "query": query,
            "result": result,
            "loaded_at": held.loaded_at,
            "regions": state.regions(services),
            "states": INSTANCE_STATES,
            "no_role": NO_ROLE,
            "filter_roles": filter_roles,
            "choices": choices,
            "selected": selected or set(),
            "chosen": form.choice if form else "",
            "errors": form.errors if form else {},
            "max_instances": MAX_INSTANCES,
        },
        block="instance_results",
        status_code=status_code,
    )


@router.get("/instances", response_class=HTMLResponse)
def list_instances(
    request: Request,
    services: ServicesDep,
    render: RendererDep,
    region: Annotated[str, Query(max_length=32)] = "",
    name: Annotated[str, Query(max_length=64)] = "",
    state: Annotated[str, Query(max_length=32)] = "",
    role: Annotated[str, Query(max_length=64)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    select: Annotated[str, Query(max_length=8)] = "",
) -> Response:
    default = services.settings.aws_region
    regions = instances_state(request, services).regions(services)
    form = None
    if region and region not in regions:
        form = ChangeForm("", default, [], "", "", clean_query(default), {})
        form.errors["region"] = f"Unknown region {region[:32]!r}; showing {default}."
    query = clean_query(region if region in regions else default, name, state, role, page)
    return _render_index(
        request,
        services,
        render,
        query,
        select_all=select == "all",
        form=form,
        status_code=422 if form else 200,
    )


@router.post("/instances/refresh")
async def refresh_instances(request: Request, services: ServicesDep) -> Response:
    """Reload the region's instances (and the instance profiles naming their roles) from AWS
    now, then show the same filters again."""
    form_data = await request.form()

    def text(key: str) -> str:
        value = form_data.get(key, "")
        return value[:200] if isinstance(value, str) else ""

    def refresh() -> str:
        state = instances_state(request, services)
        region = text("region")
        if region not in state.regions(services):
            region = services.settings.aws_region
        query = clean_query(region, text("name"), text("state"), text("role"))
        state.catalog.invalidate()
        services.instances.refresh(query.region, warm=state.catalog.profiles)
        if services.shared is not None:  # the other processes' profile lists too
            services.shared.publish(PROFILES, services.shared_key, None)
        return query.url()

    return redirect_after_post(request, await run_in_threadpool(refresh))


def _parse(request: Request, services: Services, form_data: Any) -> tuple[ChangeForm, Any]:
    state = instances_state(request, services)
    services.catch_up()
    choices = _choices(services, state)
    posted = form_data.get("choice")
    if isinstance(posted, str) and posted and find_choice(choices, posted) is None:
        choices = fresh_choices(state.catalog, services.iam, _roles(services), posted)
    form = ChangeForm.parse(
        form_data,
        regions=state.regions(services),
        default_region=services.settings.aws_region,
        choices={c.value for c in choices},
    )
    return form, find_choice(choices, form.choice)


def _invalid(request: Request, services: Services, render: Renderer, form: ChangeForm) -> Response:
    """The instances page again with the selection kept and the errors beside the fields."""
    return _render_index(
        request,
        services,
        render,
        form.query,
        selected=set(form.instance_ids),
        form=form,
        status_code=422,
    )


def _review(request: Request, services: Services, render: Renderer, form_data: Any) -> Response:
    form, choice = _parse(request, services, form_data)
    if form.errors:
        return _invalid(request, services, render, form)
    return _render_review(request, services, render, form, choice)


def _role_risks(services: Services, form: ChangeForm, choice: RoleChoice | None) -> list[Finding]:
    """The security warnings of the role being attached: each needs an acknowledgement
    before the role is handed to instances (issue 10's risk gate)."""
    if form.action != ATTACH or choice is None:
        return []
    try:
        found = role_findings(services.iam, choice.role_name, account_id=services.identity.account)
    except AwsError:
        return []
    return [f for f in found if f.level == "security_warning"]


def _rows_and_risks(
    services: Services, state: InstancesState, form: ChangeForm, choice: RoleChoice | None
) -> tuple[list[InstanceRow], list[Finding]]:
    """The selected instances as AWS holds them and the attached role's warnings, read side
    by side: on real AWS the review and the start of a change wait for the longer of the two
    (issue 15), not their sum."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="role-risks") as pool:
        risks_f = pool.submit(contextvars.copy_context().run, _role_risks, services, form, choice)
        rows = fetch_rows(services.ec2(form.region), state.catalog.by_arn, form.instance_ids)
        return rows, risks_f.result()


def _render_review(
    request: Request,
    services: Services,
    render: Renderer,
    form: ChangeForm,
    choice: RoleChoice | None,
    status_code: int = 200,
    acknowledged: frozenset[str] = frozenset(),
) -> Response:
    state = instances_state(request, services)
    rows, risks = _rows_and_risks(services, state, form, choice)
    plan = plan_change(form.region, form.action, form.instance_ids, rows, choice)
    return render.page(
        request,
        "instances/review.html",
        {
            "form": form,
            "plan": plan,
            "errors": form.errors,
            "risks": risks,
            "acknowledged": acknowledged,
        },
        status_code=status_code,
    )


def _apply(
    request: Request,
    services: Services,
    render: Renderer,
    form_data: Any,
    ctx: AuditContext,
) -> Response:
    form, choice = _parse(request, services, form_data)
    if form.errors:
        return _invalid(request, services, render, form)
    form.check_confirmation()
    acknowledged = frozenset(v for v in form_data.getlist("acknowledge") if isinstance(v, str))
    state = instances_state(request, services)
    rows, risks = _rows_and_risks(services, state, form, choice)
    if any(f.key not in acknowledged for f in risks):
        form.errors["acknowledge"] = "Acknowledge each security warning of the role first."
    plan = plan_change(form.region, form.action, form.instance_ids, rows, choice)
    if not plan.changing:
        form.errors["instance_id"] = "None of these instances can be changed (see below)."
    if form.errors:
        return _render_review(
            request, services, render, form, choice, status_code=422, acknowledged=acknowledged
        )
    review = (
        {
            "findings": [f.as_dict() for f in risks],
            "acknowledged": sorted(acknowledged & {f.key for f in risks}),
        }
        if risks
        else None
    )
    operation_id = state.runner.start(
        services, ctx, plan, on_profile_created=state.catalog.invalidate, review=review
    )
    return redirect_after_post(request, f"/instances/operations/{operation_id}")


@router.post("/instances/review", response_class=HTMLResponse)
async def review_change(request: Request, services: ServicesDep, render: RendererDep) -> Response:
    """Show what attach/detach would do to each selected instance (no change yet)."""
    form_data = await request.form()
    return await run_in_threadpool(_review, request, services, render, form_data)


@router.post("/instances/apply", response_class=HTMLResponse)
async def apply_change(
    request: Request, services: ServicesDep, render: RendererDep, ctx: AuditContextDep
) -> Response:
    """Start the reviewed change in the background; one operation id for all instances."""
    form_data = await request.form()
    return await run_in_threadpool(_apply, request, services, render, form_data, ctx)


@router.get("/instances/operations/{operation_id}", response_class=HTMLResponse)
def operation_status(
    request: Request, operation_id: str, services: ServicesDep, render: RendererDep
) -> Response:
    if not valid_operation_id(operation_id):
        raise HTTPException(404, "There is no such role change.")
    runner = instances_state(request, services).runner

    def look() -> OperationStatus | None:
        return load_status(services, operation_id, runner.running(operation_id))

    status = look()
    if status is None:
        raise HTTPException(404, "There is no such role change.")
    if wants_wait(request):  # "Check progress" without JavaScript
        status = wait_for_news(
            look,
            state=_news,
            finished=lambda seen: seen is None or seen.done,
            # Each look asks EC2 for the association states: no more often than the page's
            # htmx poll does.
            every=2.0,
        )
        if status is None:  # cannot happen once found: the ledger is append-only
            raise HTTPException(404, "There is no such role change.")
    return render.page(
        request, "instances/operation.html", {"status": status}, block="operation_status"
    )


def _news(status: OperationStatus | None) -> tuple[object, ...]:
    """What a person following the change sees move: each instance's result and association."""
    if status is None:
        return ()
    rows = tuple((i.result, i.association_state) for i in status.instances)
    return (status.finished, len(status.profile_calls), rows)
