"""Rebuild a role's trust policy with the wizard's five trusted-entity forms (issue 11).

The form is step 1's (app.wizard.trust_form, wizard/_trust_fields.html), opened prefilled
from the role's current document (app.wizard.trust_prefill; documents the forms cannot
express open in the custom editor). Its policy goes to the same review and apply as the trust
policy editor (app.roles.manage): before/after diff, policy findings, risk gate, the state the
form was based on checked again at apply. Plain forms; htmx adds the live preview and the
service picker's lists.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from app.auth.permissions import Role, require
from app.aws.types import Role as IamRole
from app.roles import changes, manage
from app.services import Services
from app.web.deps import RendererDep, ServicesDep
from app.web.templating import Renderer, is_partial
from app.wizard import picker, trust_form
from app.wizard.service import Wizard, wizard_for
from app.wizard.trust_prefill import form_values
from app.wizard.web import FormDep, FormValues

router = APIRouter(dependencies=[Depends(require(Role.OPERATOR))])

# The wizard's live check of a custom trust policy saves nothing and needs no draft ("new").
CHECK_URL = "/create-role/new/check/trust"
PICKER_PARTS = ("service_list", "use_cases")


def _url(role_name: str, tail: str = "") -> str:
    return f"/roles/{role_name}/trust/rebuild{tail}"


def _page(
    request: Request,
    render: Renderer,
    wizard: Wizard,
    role: IamRole,
    values: dict[str, str],
    base: str,
    *,
    show_errors: bool,
    status: int = 200,
    query: str = "",
    block: str | None = None,
    oob: bool = False,
) -> Response:
    context = {
        "role": role,
        "base": base,
        "action": _url(role.name),
        "preview_url": _url(role.name, "/preview"),
        **trust_form.trust_form_context(
            wizard,
            values,
            show_errors=show_errors,
            picker_url=_url(role.name, "/picker"),
            check_url=CHECK_URL,
            query=query,
            oob=oob,
        ),
    }
    return render.page(
        request, "roles/trust_rebuild.html", context, block=block, status_code=status
    )


def _role(services: Services, name: str) -> IamRole:
    return services.iam.get_role(manage.checked_name(name))


@router.get("/roles/{name}/trust/rebuild", response_class=HTMLResponse)
def rebuild_trust_form(
    request: Request, name: str, services: ServicesDep, render: RendererDep
) -> Response:
    """Step 1's forms, prefilled from the role's current trust policy."""
    role = _role(services, name)
    wizard = wizard_for(request.app.state, services)
    prefilled = form_values(role.trust_policy, wizard.providers())
    values = picker.apply({**trust_form.TRUST_DEFAULTS, **prefilled})
    base = changes.fingerprint(changes.trust_state(role))
    return _page(request, render, wizard, role, values, base, show_errors=False)


@router.post("/roles/{name}/trust/rebuild", response_class=HTMLResponse)
def rebuild_trust(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    """ "Review the change" builds the policy and shows the trust review (or the form again
    with its errors, 422). The picker's buttons without JavaScript and "Update preview" show
    the form again."""
    role = _role(services, name)
    wizard = wizard_for(request.app.state, services)
    values = trust_form.trust_values(form)
    nav, query, base = form.get("nav"), form.get("service_query"), form.get("base")
    if nav != "review":
        preview = nav == "preview"
        return _page(request, render, wizard, role, values, base, show_errors=preview, query=query)
    result = trust_form.build(wizard, values)
    if trust_form.trust_errors(result, values) or result.policy is None:
        return _page(
            request, render, wizard, role, values, base, show_errors=True, status=422, query=query
        )
    # The review and its Apply are the trust editor's: the built document is what is applied.
    document = json.dumps(result.policy, indent=2)
    reviewed = FormValues([("document", document), ("base", base)])
    return manage.trust_review(request, render, services, role, result.policy, reviewed)


@router.post("/roles/{name}/trust/rebuild/preview", response_class=HTMLResponse)
def preview_rebuilt_trust(
    request: Request, name: str, form: FormDep, services: ServicesDep, render: RendererDep
) -> Response:
    """The live preview (htmx), unsaved: the policy for the fields as they are; errors of
    fields that have become valid are cleared out of band."""
    role = _role(services, name)
    wizard = wizard_for(request.app.state, services)
    values = trust_form.trust_values(form)
    base = form.get("base")
    return _page(
        request,
        render,
        wizard,
        role,
        values,
        base,
        show_errors=True,
        block="trust_preview",
        oob=True,
    )


@router.post("/roles/{name}/trust/rebuild/picker", response_class=HTMLResponse)
def rebuild_trust_picker(
    request: Request,
    name: str,
    form: FormDep,
    render: RendererDep,
    part: str = "use_cases",
) -> Response:
    """The service picker's list or the chosen service's use cases (htmx); a plain request
    gets the form."""
    role_name = manage.checked_name(name)
    if not is_partial(request) or part not in PICKER_PARTS:
        return Response(status_code=303, headers={"Location": _url(role_name)})
    values = trust_form.trust_values(form)
    context = {
        "values": values,
        "errors": {},
        "picker": picker.build(values, form.get("service_query")),
        "picker_url": _url(role_name, "/picker"),
    }
    return render.page(request, "wizard/_service_picker.html", context, block=part)
