"""In-app roles and what each route needs.

Every route is checked centrally (app.auth.guard.authorize, an app-wide dependency), so routes
added later are protected without doing anything: GET/HEAD need a viewer, any other method an
operator. A route that needs more says so with `dependencies=[Depends(require(Role.ADMIN))]`;
a route open to anonymous visitors says so with `dependencies=[Depends(PUBLIC)]`. The route
walk test (tests/web/test_auth_route_walk.py) reads the same declarations.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from fastapi import HTTPException, Request
from fastapi.routing import APIRoute

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(IntEnum):
    """Ordered: each role can do everything the ones below it can."""

    VIEWER = 1  # read everything
    OPERATOR = 2  # create roles, attach roles to instances
    ADMIN = 3  # everything, including user management and destructive actions

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {value!r}: use viewer, operator or admin") from None


ROLE_CHOICES = tuple(r.label for r in Role)


class Forbidden(HTTPException):
    def __init__(self, role: Role, needed: Role) -> None:
        super().__init__(
            403,
            f"Your RoleDesk role ({role.label}) does not allow this; it needs {needed.label}.",
        )


class require:
    """Route dependency declaring the in-app role a route needs instead of the method default
    (usually more: ADMIN for user management and destructive actions).

    The central check enforces it before the route runs; calling it again here makes the
    declaration safe on its own too."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, request: Request) -> None:
        user = getattr(request.state, "user", None)
        if user is None or user.role < self.role:
            raise Forbidden(user.role if user else Role.VIEWER, self.role)


class _Public:
    """Route dependency marking a route as open to anonymous visitors."""

    async def __call__(self) -> None:
        return None


PUBLIC = _Public()


def _declared(route: APIRoute) -> list[Any]:
    return [d.call for d in route.dependant.dependencies]


def is_public(route: APIRoute) -> bool:
    return any(call is PUBLIC for call in _declared(route))


def required_role(route: APIRoute, method: str) -> Role:
    """The role `method` on `route` needs: the declared one (the highest, if several), else
    viewer for GET/HEAD and operator for anything that may change something."""
    declared = [call.role for call in _declared(route) if isinstance(call, require)]
    if declared:
        return max(declared)
    return Role.VIEWER if method.upper() in SAFE_METHODS else Role.OPERATOR


def iter_routes(routes: list[Any]) -> list[Any]:
    """Every leaf route of an app (`app.routes`), looking inside included routers (FastAPI
    0.16x keeps `include_router` results as lazy `_IncludedRouter` entries)."""
    leaves: list[Any] = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            leaves.append(route)
            continue
        leaves.extend(context.original_route for context in contexts())
    return leaves
