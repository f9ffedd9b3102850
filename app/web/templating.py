"""Rendering pages and their htmx fragments.

Each page is one template; a fragment is a `{% block %}` of it named after the DOM id it
replaces (`role_rows` <-> `id="role-rows"`). The route, never the client, picks the block.
This is the only module that reads HX-* request headers. Autoescaping is forced on for every
template, whatever its file name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2_fragments import render_block

from app.accounts.urls import RenderingBase, account_base, in_account, rendering_base
from app.policy import managed_descriptions

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


def _ago(value: datetime | None) -> str:
    """'3 minutes ago' style, for ages shown beside absolute times."""
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - value).total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now" if seconds < 10 else f"{seconds} seconds ago"


def _utc(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():
        value = value.astimezone(UTC)
    # The history's rows, twice each: without strftime's format parsing.
    if fmt == SECONDS:
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        )
    if fmt == ISO_SECONDS:
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}Z"
        )
    return value.strftime(fmt)


SECONDS = "%Y-%m-%d %H:%M:%S"
ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"  # a <time> element's datetime attribute


def make_environment(directory: Path = TEMPLATES_DIR) -> Environment:
    env = Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates change only with a new release (a restart): without this, every page
        # stats each template it uses (extends, includes, imports) to see if it changed.
        auto_reload=False,
    )
    env.filters["ago"] = _ago
    env.filters["utc"] = _utc
    # Where policy descriptions come from, for the note under every policy search.
    env.globals["description_source"] = managed_descriptions.source
    # The account's prefix for every link (app.accounts.urls), macros included.
    env.globals["account_base"] = RenderingBase()
    return env


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def is_partial(request: Request) -> bool:
    """A fragment is wanted: an htmx request that is neither boosted nor a history restore
    (both of which need the whole page)."""
    return (
        is_htmx(request)
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def targets(request: Request, element_id: str) -> bool:
    """The htmx request will swap its answer into the element with this id."""
    return request.headers.get("HX-Target") == element_id


class Renderer:
    def __init__(self, env: Environment, globals_for: Any) -> None:
        self.env = env
        self._globals_for = globals_for  # callable(request) -> dict of layout context

    def page(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        *,
        block: str | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        """The whole page, or only `block` when the request wants a fragment."""
        full = {**self._globals_for(request), **context, "request": request}
        token = rendering_base.set(account_base(request.scope))
        try:
            if block is not None and is_partial(request):
                html = render_block(self.env, template, block, **full)
            else:
                html = self.env.get_template(template).render(full)
        finally:
            rendering_base.reset(token)
        response = HTMLResponse(html, status_code=status_code)
        response.headers["Vary"] = "HX-Request"
        return response


def redirect_after_post(request: Request, url: str) -> Response:
    """Post/redirect/get: 303 for plain forms, HX-Location for htmx (no full reload). A
    path of RoleDesk's stays in the request's account (app.accounts.urls)."""
    url = in_account(request.scope, url)
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Location": url})
    return RedirectResponse(url, status_code=303)
