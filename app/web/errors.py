"""Error pages: AWS errors in plain words with AWS's code and request id; not-found pages;
a generic 500 with a correlation id (details go to the log, never to the page)."""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.aws.errors import AccessDenied, AwsError, NotFound, Throttled, Unreachable
from app.web.templating import Renderer, is_htmx

log = logging.getLogger("roledesk.errors")

# Starlette's default details ("Not Found", "Method Not Allowed") in plain words (issue 13).
PLAIN_WORDS = {
    404: "There is no page at this address. It may have been mistyped, or the link is out of date.",
    405: "This address takes a form submission, not a visit. Open the page the form is on.",
}


def _status_for(exc: AwsError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, AccessDenied):
        return 403
    if exc.code == "ResponseParserError":  # an answer came, but not one AWS would send
        return 502
    if isinstance(exc, Throttled | Unreachable):
        return 503
    return 502


def render_error(request: Request, status: int, context: dict[str, object]) -> Response:
    """The error page, or for htmx the message alone, shown in the page's alert area
    instead of the element that asked."""
    renderer: Renderer = request.app.state.renderer
    if not is_htmx(request):
        return renderer.page(request, "errors/error.html", context, status_code=status)
    response = renderer.page(request, "errors/_alert.html", context, status_code=status)
    response.headers["HX-Retarget"] = "#alerts"
    response.headers["HX-Reswap"] = "innerHTML"
    return response


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AwsError)
    async def aws_error(request: Request, exc: AwsError) -> Response:
        return render_error(
            request, _status_for(exc), {"title": "AWS answered with an error", "aws_error": exc}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 403: "Not allowed", 405: "Not allowed", 401: "Sign in"}
        message = exc.detail
        if message == HTTPStatus(exc.status_code).phrase:  # Starlette's bare "Not Found"
            message = PLAIN_WORDS.get(exc.status_code, "RoleDesk could not answer this request.")
        if not hasattr(request.state, "signed_in"):
            # No route matched, so the sign-in check never ran: look the session up so a
            # signed-in person's "Not found" page keeps their header and navigation.
            from app.auth.guard import current_session

            current_session(request)
        return render_error(
            request,
            exc.status_code,
            {
                "title": titles.get(exc.status_code, "Request refused"),
                "message": message,
                "aws_error": None,
            },
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return render_error(
            request,
            422,
            {
                "title": "Invalid request",
                "message": "Some values in the address are not valid.",
                "aws_error": None,
            },
        )


def server_error_page(correlation_id: str) -> HTMLResponse:
    """The generic 500 page: a reference to quote, nothing from the error itself."""
    html = (
        "<!doctype html><html lang=en><title>Server error</title><h1>Something went wrong"
        f"</h1><p>RoleDesk could not complete this request. Reference: {correlation_id}</p>"
    )
    return HTMLResponse(html, status_code=500)


class UnhandledErrorMiddleware:
    """Turns an unhandled exception into the generic 500 page *inside* the middleware stack.

    Starlette answers unhandled exceptions in its outermost ServerErrorMiddleware, outside
    every middleware the app adds, so that page had none of the security headers; it also
    re-raises, and uvicorn then closes the connection. Added first (so innermost), this
    answers before either: the security headers, CSRF cookie and timing middleware wrap the
    500 like any other response, and the connection stays usable. An error after the response
    has started cannot be turned into a page; it is re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            correlation_id = uuid.uuid4().hex[:12]
            log.exception(
                "unhandled error %s on %s %s",
                correlation_id,
                scope.get("method"),
                scope.get("path"),
            )
            await server_error_page(correlation_id)(scope, receive, send)


__all__ = ["HTTPException", "UnhandledErrorMiddleware", "install_error_handlers"]
