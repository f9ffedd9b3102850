"""Pages of the accounts RoleDesk reaches, and the cross-account role pair.

Flow (plain forms; no JavaScript needed): GET /accounts/pairs/new -> POST
/accounts/pairs/review (checked on the server; the two documents and the calls, per
account) -> POST /accounts/pairs (checked again, the plan starts in the background, 303) ->
GET /operations/{id} (the engine's progress page) -> GET /accounts/pairs/{id} (done: the CLI
command and profile that use the pair).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.accounts.context import UnknownAccount
from app.accounts.hub import AccountHub
from app.accounts.model import AccountList
from app.accounts.pair import KIND, assume_policy, pair_plan, run_pair, trust_policy, usage
from app.accounts.pair_form import FIELDS, PairForm
from app.accounts.search import (
    CHECK_WAIT,
    FIRST_WAIT,
    HTMX_WAIT,
    AccountLoads,
    chosen_accounts,
    search_all,
)
from app.accounts.urls import prefix_of
from app.auth.guard import allowed_accounts, refuse_other_accounts
from app.auth.permissions import Role, require
from app.aws.errors import AwsError
from app.instances.forms import valid_operation_id
from app.operations import progress
from app.operations.engine import NOT_STARTED, Engine, RunResult
from app.services import Services
from app.web.deps import AuditContextDep, RendererDep, ServicesDep, actor_name
from app.web.params import ascii_int
from app.web.templating import Renderer, is_htmx, redirect_after_post
from app.wizard.rules import DESCRIPTION, EXTERNAL_ID, ROLE_NAME
from app.wizard.web import FormDep

router = APIRouter()

ACCOUNT_FORMAT = re.compile(r"\d{12}")
MAX_SEARCH = 200

_HUB_LOCK = threading.Lock()


def account_hub(request: Request, services: Services) -> AccountHub:
    """One hub per app: its credential cache is shared by every request."""
    return app_hub(request.app)


def app_hub(app: Any) -> AccountHub:
    with _HUB_LOCK:
        hub: AccountHub | None = getattr(app.state, "account_hub", None)
        if hub is None:
            base: Services = app.state.services  # the hub account's own
            hub = AccountHub(base.settings, base.clients, base.identity.account)
            app.state.account_hub = hub
        return hub


_LOADS_LOCK = threading.Lock()


def account_loads(app: Any) -> AccountLoads:
    """One set of background loads per app (its pool bounds the reads for everyone)."""
    with _LOADS_LOCK:
        loads: AccountLoads | None = getattr(app.state, "account_loads", None)
        if loads is None or loads.accounts is not app.state.account_services:
            loads = AccountLoads(app.state.account_services)
            app.state.account_loads = loads
        return loads


def _accounts(hub: AccountHub) -> tuple[AccountList | None, AwsError | None]:
    try:
        return hub.accounts(), None
    except AwsError as exc:  # source `organizations` and Organizations failed
        return None, exc


# Where the switcher lands in the chosen account: the same section, at its start (a role
# page or a draft of one account has no twin in another).
SECTIONS = ("/roles", "/create-role", "/instances", "/access-review", "/audit")


def section_of(page: str) -> str:
    return next((s for s in SECTIONS if page == s or page.startswith(s + "/")), "/roles")


@router.get("/accounts/switch", response_class=HTMLResponse)
def switch_account(
    request: Request, services: ServicesDep, account: str = "", page: str = "/roles"
) -> Response:
    """The header's account switcher (a plain GET form): the same section, in `account`."""
    if not ACCOUNT_FORMAT.fullmatch(account):  # no account chosen: the list of them
        return RedirectResponse("/accounts", status_code=303)
    chosen = request.app.state.account_services.find(account)
    if chosen is None:
        raise UnknownAccount(account)
    refuse_other_accounts(request, account)
    base = prefix_of(None if chosen.is_hub else chosen.account_id)
    return RedirectResponse(base + section_of(page), status_code=303)


@router.get("/all-accounts/roles", response_class=HTMLResponse)
def roles_in_all_accounts(
    request: Request,
    services: ServicesDep,
    render: RendererDep,
    q: str = "",
    account: str = "",
    page: str = "",
    check: str = "",
) -> Response:
    """Every account's roles at once (app.accounts.search): an Account column and filter;
    while the lists load, which accounts are loaded, loading or unavailable."""
    errors: dict[str, str] = {}
    q = q.strip()
    if len(q) > MAX_SEARCH:
        errors["q"] = f"At most {MAX_SEARCH} characters."
    if account and not ACCOUNT_FORMAT.fullmatch(account):
        errors["account"] = "Choose one of the listed accounts."
    accounts = request.app.state.account_services
    result = progress = None
    if not errors:
        listed = accounts.listed()
        every = [a.account_id for a in listed.accounts] if listed is not None else []
        allowed = allowed_accounts(request, every)
        chosen = chosen_accounts(accounts, account, None if allowed is every else allowed)
        user = actor_name(request)
        # The lists not in memory load in the background; wait for them a while, then show
        # their progress (htmx asks again, until one more is done; "Check progress" waits
        # longer). `check` only picks the wait, from the server's own constants.
        htmx = is_htmx(request)
        wait = HTMX_WAIT if htmx and check else CHECK_WAIT if check else FIRST_WAIT
        progress = account_loads(request.app).progress(
            chosen, user, wait, any_change=htmx and bool(check)
        )
        if progress.done:
            result = search_all(accounts, user, q, chosen, ascii_int(page) or 1, progress.unreached)
    return render.page(
        request,
        "accounts/roles.html",
        {
            "q": q,
            "account": account,
            "errors": errors,
            "result": result,
            "progress": progress,
            "again": {"q": q, "account": account, "page": page, "check": "1"},
        },
        block="all_roles_results",
        status_code=422 if errors else 200,
    )


@router.get("/accounts", response_class=HTMLResponse)
def list_accounts(request: Request, services: ServicesDep, render: RendererDep) -> Response:
    hub = account_hub(request, services)
    accounts, problem = _accounts(hub)
    if accounts is not None:  # a limited user sees (and RoleDesk checks) only theirs
        mine = set(allowed_accounts(request, [a.account_id for a in accounts.accounts]))
        accounts = replace(
            accounts, accounts=tuple(a for a in accounts.accounts if a.account_id in mine)
        )
    statuses = hub.statuses(accounts, actor_name(request)) if accounts else []
    return render.page(
        request,
        "accounts/index.html",
        {"accounts": accounts, "problem": problem, "statuses": statuses},
    )


def _form_page(
    request: Request,
    render: Renderer,
    accounts: AccountList | None,
    problem: AwsError | None,
    form: PairForm,
    status: int = 200,
) -> Response:
    if accounts is not None:  # a limited user is offered only their accounts
        mine = set(allowed_accounts(request, [a.account_id for a in accounts.accounts]))
        accounts = replace(
            accounts, accounts=tuple(a for a in accounts.accounts if a.account_id in mine)
        )
    return render.page(
        request,
        "accounts/pair_form.html",
        {
            "accounts": accounts,
            "problem": problem,
            "values": form.values,
            "errors": form.errors,
            "rules": {"role": ROLE_NAME, "external_id": EXTERNAL_ID, "description": DESCRIPTION},
        },
        status_code=status,
    )


@router.get(
    "/accounts/pairs/new",
    response_class=HTMLResponse,
    dependencies=[Depends(require(Role.OPERATOR))],
)
def new_pair(request: Request, services: ServicesDep, render: RendererDep) -> Response:
    accounts, problem = _accounts(account_hub(request, services))
    return _form_page(request, render, accounts, problem, PairForm.parse({}))


def _checked(
    request: Request, services: Services, form: PairForm
) -> tuple[AccountList | None, AwsError | None, Any]:
    """(accounts, problem, pair or None): shape checks first, AWS only when they pass."""
    hub = account_hub(request, services)
    accounts, problem = _accounts(hub)
    if accounts is None or not form.check(accounts):
        return accounts, problem, None
    return accounts, problem, form.prepare(hub, accounts, actor_name(request))


@router.post("/accounts/pairs/review", response_class=HTMLResponse)
def review_pair(
    request: Request, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    parsed = PairForm.parse(form)
    # Both accounts the pair changes must be the user's (the URL names neither).
    refuse_other_accounts(request, parsed.values["source_account"], parsed.values["target_account"])
    accounts, problem, pair = _checked(request, services, parsed)
    if pair is None:
        return _form_page(request, render, accounts, problem, parsed, 422)
    plan = pair_plan(account_hub(request, services), actor_name(request), pair, "")
    return render.page(
        request,
        "accounts/pair_review.html",
        {
            "pair": pair,
            "steps": plan.review(),
            "trust": json.dumps(trust_policy(pair), indent=2),
            "allow": json.dumps(assume_policy(pair), indent=2),
            "fields": {k: parsed.values[k] for k in FIELDS},
        },
    )


@router.post("/accounts/pairs", response_class=HTMLResponse)
def create_pair(
    request: Request,
    form: FormDep,
    services: ServicesDep,
    render: RendererDep,
    ctx: AuditContextDep,
) -> Response:
    parsed = PairForm.parse(form)
    # Both accounts the pair changes must be the user's (the URL names neither).
    refuse_other_accounts(request, parsed.values["source_account"], parsed.values["target_account"])
    accounts, problem, pair = _checked(request, services, parsed)
    if pair is None:
        return _form_page(request, render, accounts, problem, parsed, 422)
    hub = account_hub(request, services)
    plan = pair_plan(hub, actor_name(request), pair, services.settings.aws_region)
    engine = Engine(services)
    engine.record_start(ctx, plan)
    user = actor_name(request)
    accounts = request.app.state.account_services

    def run() -> RunResult:
        result = run_pair(engine, ctx, pair, plan, hub, user)
        if result.steps["create"].status != NOT_STARTED:  # made (or made and undone) in B
            accounts.changed(pair.target.account_id, user, "iam:CreateRole", pair.role_arn)
        return result

    services.runs.start(ctx.operation_id, run, KIND)
    # A moment for a fast run to end on its done page; a slow one shows its progress.
    services.runs.wait(ctx.operation_id, 0.3)
    return redirect_after_post(request, f"/operations/{ctx.operation_id}")


@router.get("/accounts/pairs/{operation_id}", response_class=HTMLResponse)
def pair_done(
    request: Request, operation_id: str, services: ServicesDep, render: RendererDep
) -> Response:
    if not valid_operation_id(operation_id):
        raise HTTPException(404, "There is no such cross-account pair.")
    run = progress.load(services.db, operation_id, services.runs.running(operation_id))
    if run is None:
        raise HTTPException(404, "There is no such cross-account pair.")
    if run.kind != KIND:  # another kind of operation: its own progress page tells it
        return RedirectResponse(f"/operations/{operation_id}", status_code=303)
    pair = run.details.get("pair", {})
    return render.page(
        request,
        "accounts/pair_done.html",
        {"run": run, "pair": pair, "usage": usage(pair) if run.ok else None},
    )
