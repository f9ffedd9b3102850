"""STS: who RoleDesk is talking to AWS as."""

from __future__ import annotations

from app.aws.calls import reads
from app.aws.clients import AwsClients
from app.aws.translate import aws_errors
from app.aws.types import CallerIdentity


class StsGateway:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @reads("sts:GetCallerIdentity")
    def caller_identity(self) -> CallerIdentity:
        """Raises CredentialsProblem for missing, invalid or expired credentials."""
        with aws_errors():
            raw = self._clients.client("sts").get_caller_identity()
        return CallerIdentity(raw["Account"], raw["Arn"], raw["UserId"])
