"""The pages for an account in the URL that RoleDesk cannot work in: one it does not know
(404), and one whose spoke role cannot be assumed now (503, with AWS's error in plain words,
its code and request id). Other accounts keep working."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from app.accounts.context import AccountUnavailable, UnknownAccount
from app.web.errors import render_error


def install_account_errors(app: FastAPI) -> None:
    @app.exception_handler(UnknownAccount)
    async def unknown_account(request: Request, exc: UnknownAccount) -> Response:
        return render_error(
            request,
            404,
            {
                "title": "No such account",
                "message": f"RoleDesk does not manage account {exc.account_id}: it is not in "
                "the organization (or the configured list). The Accounts page lists those it "
                "manages.",
                "aws_error": None,
            },
        )

    @app.exception_handler(AccountUnavailable)
    async def unavailable(request: Request, exc: AccountUnavailable) -> Response:
        return render_error(
            request,
            503,
            {
                "title": f"Account {exc.account.label} is unavailable",
                "message": f"RoleDesk could not assume the role {exc.account.role_arn}, so it "
                "cannot act in this account now. The spoke role may not be deployed there, or "
                "its trust may not name RoleDesk's role. The other accounts keep working.",
                "aws_error": exc.error,
            },
        )
