"""Shared pieces of the wizard's routes: form parsing, draft lookup, the wizard dependency."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response

from app.accounts.urls import in_account
from app.web.deps import actor_name, get_services
from app.web.templating import is_partial, redirect_after_post, targets
from app.wizard.drafts import Draft
from app.wizard.service import Wizard, wizard_for

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_FIELD = 140_000  # a little above the largest policy document AWS accepts


class FormValues:
    """A parsed form: first value of a field (`get`) or all of them (`all`), bounded."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = [(k, v[:MAX_FIELD]) for k, v in pairs]

    def get(self, key: str, default: str = "") -> str:
        for k, v in self._pairs:
            if k == key:
                return v
        return default

    def all(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]


async def read_form(request: Request) -> FormValues:
    form = await request.form()
    return FormValues([(k, v) for k, v in form.multi_items() if isinstance(v, str)])


async def get_wizard(request: Request) -> Wizard:
    """No I/O, so async: a plain `def` dependency would cost a thread-pool hand-off."""
    return wizard_for(request.app.state, get_services(request))


FormDep = Annotated[FormValues, Depends(read_form)]
WizardDep = Annotated[Wizard, Depends(get_wizard)]


NO_SUCH_DRAFT = (
    "This draft does not exist or has expired (drafts are kept for 7 days). "
    "Start a new role from the Create role page."
)


def load_draft(wizard: Wizard, request: Request, draft_id: str) -> Draft:
    """The caller's draft, or a 404 page (unknown, expired, or someone else's)."""
    draft = wizard.drafts.get(draft_id) if _UUID.fullmatch(draft_id) else None
    if draft is None or draft.actor != actor_name(request):
        raise HTTPException(404, NO_SUCH_DRAFT)
    return draft


def edit_own_step(
    wizard: Wizard,
    request: Request,
    draft_id: str,
    step: str,
    values_for: Callable[[Draft], dict[str, Any]],
) -> Draft:
    """Save one step of the caller's draft, its values computed from the draft as stored (one
    write transaction, see DraftStore.edit_step); a 404 page as load_draft's. The draft comes
    back unchanged when it is no longer editable: the caller sends that to its done page."""
    found = (
        wizard.drafts.edit_step(draft_id, actor_name(request), step, values_for)
        if _UUID.fullmatch(draft_id)
        else None
    )
    if found is None:
        raise HTTPException(404, NO_SUCH_DRAFT)
    return found


def step_url(draft_id: str, step: str) -> str:
    return f"/create-role/{draft_id}/{step}"


def done_redirect(draft: Draft) -> Response | None:
    """Steps of a draft being (or already) created lead to its done page."""
    if draft.editable:
        return None
    return Response(status_code=303, headers={"Location": step_url(draft.id, "done")})


NEW = "new"  # step 1 of a role not saved yet: a draft exists only once step 1 is saved


@dataclass(frozen=True)
class Unsaved:
    """Stands in for a draft on step 1 before anything is saved (issue 13: every "Start a new
    role" used to leave a 7-day draft behind)."""

    id: str = NEW
    status: str = "draft"
    editable: bool = True

    def step(self, name: str) -> dict[str, Any]:
        return {}


StepPage = Callable[[Request, Wizard, Draft], Response]
STEP_PAGES: dict[str, StepPage] = {}  # filled by the step modules: step name -> its page


def go_to_step(
    request: Request, wizard: Wizard, draft: Draft, step: str, query: str = ""
) -> Response:
    """Where a valid submit leads. An htmx submit aimed at the step area gets that step's page
    in this same response, its URL pushed into the history (one request instead of a redirect
    and a second one); a plain form gets post/redirect/get."""
    url = step_url(draft.id, step) + query
    page = STEP_PAGES.get(step)
    if page is not None and is_partial(request) and targets(request, "wizard-step"):
        response = page(request, wizard, draft)
        # The address in the request's account: a member account's wizard stays in it.
        response.headers["HX-Push-Url"] = in_account(request.scope, url)
        return response
    return redirect_after_post(request, url)
