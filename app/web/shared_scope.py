"""One catch-up with the other processes' changes per request (app.shared.state).

A pure ASGI middleware, so the request's context (and so its scope) reaches the route,
which runs in a worker thread that copies the context."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.shared.state import request_scope


class SharedRequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_scope():
            await self.app(scope, receive, send)
