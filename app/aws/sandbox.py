"""The embedded AWS sandbox: moto's server, in this process, on 127.0.0.1.

It holds state in memory only, so each start begins empty (and is then seeded). The endpoint
answers any AWS client: `aws --endpoint-url URL iam list-roles` sees what RoleDesk sees.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

SANDBOX_ACCOUNT_ID = "123456789012"  # moto's default account


class Sandbox:
    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._server: Any = None
        self.endpoint_url = ""

    def start(self) -> str:
        """Start the server and return its endpoint URL."""
        # Read by moto when it creates an account's IAM backend: load the 1,582 AWS managed
        # policies so the wizard can offer them.
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        # RoleDesk never lists AMIs; loading moto's 1,301 of them costs ~1 s per reset.
        os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        from moto.server import ThreadedMotoServer

        # moto's werkzeug server logs every request at INFO; RoleDesk's own log is enough.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

        self._server = _server_class(ThreadedMotoServer)(
            ip_address="127.0.0.1", port=self._requested_port, verbose=False
        )
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def reset(self) -> None:
        """Wipe all sandbox state (moto's reset API)."""
        request = urllib.request.Request(  # noqa: S310 - our own loopback endpoint
            f"{self.endpoint_url}/moto-api/reset", method="POST"
        )
        # moto re-creates every account's backends on reset (loading the managed policies
        # again for each): with the sandbox organization's members that takes a while.
        with urllib.request.urlopen(request, timeout=120):  # noqa: S310
            pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def _not_implemented(exc: NotImplementedError) -> Any:
    """moto's own answer to an action it does not implement is a bare HTTP 500 page (the
    `NotImplementedError` it raises reaches only its log), which botocore retries and then
    cannot read. Answered instead as AWS answers an error, code `NotImplemented` (HTTP 501,
    not retried) with moto's message, so RoleDesk can tell "the sandbox cannot do this" from
    a fault and say so (the access review's last-accessed data, for one)."""
    from flask import Response, request

    message = str(exc) or "This action is not implemented by the sandbox (moto)."
    if "json" in (request.content_type or ""):
        body = json.dumps({"__type": "NotImplemented", "message": message})
        media = "application/x-amz-json-1.1"
    else:
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>NotImplemented</Code>"
            f"<Message>{escape(message)}</Message></Error>"
            "</ErrorResponse>"
        )
        media = "text/xml"
    return Response(
        body, status=501, mimetype=media, headers={"x-amzn-ErrorType": "NotImplemented"}
    )


def _server_class(base: type[Any]) -> type[Any]:
    """moto's threaded server, its backend apps answering NotImplemented as above."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    def backend_app(service: Any) -> Any:
        app = create_backend_app(service)
        app.register_error_handler(NotImplementedError, _not_implemented)
        return app

    class SandboxServer(base):  # type: ignore[misc]
        # The same as ThreadedMotoServer._server_entry (moto 5.2) with `backend_app`.
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(backend_app)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return SandboxServer


def use_roles(endpoint_url: str, role_arns: list[str]) -> None:
    """Give sandbox roles a real "last activity": assume each role and make one call with its
    credentials, which is what sets RoleLastUsed in moto (as in AWS). Sandbox only."""
    import boto3

    from app.aws.clients import SANDBOX_KEYS

    sts = boto3.client(
        "sts",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=SANDBOX_KEYS["aws_access_key_id"],
        aws_secret_access_key=SANDBOX_KEYS["aws_secret_access_key"],
    )
    for arn in role_arns:
        creds = sts.assume_role(RoleArn=arn, RoleSessionName="sandbox-activity")["Credentials"]
        boto3.client(
            "sts",
            endpoint_url=endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        ).get_caller_identity()


def set_role_dates(
    account: str,
    role_name: str,
    *,
    created: datetime | None = None,
    last_used: datetime | None = None,
    region: str = "us-east-1",
) -> None:
    """Set a sandbox role's creation date and last use, which AWS (and moto) set only by
    the passing of time: the sandbox seed's "unused for months" role and the access review
    tests need a role that is old. moto documents `Role.last_used` as settable; it has no
    API for either, so this reaches its in-process backend. Sandbox only."""
    from moto.iam.models import iam_backends

    role = iam_backends[account]["global"].get_role(role_name)
    if created is not None:
        role.create_date = created
    if last_used is not None:
        role.last_used = last_used
        role.last_used_region = region  # type: ignore[assignment]
