"""STS: who RoleDesk is talking to AWS as, and the spoke role it assumes in member accounts.

API reference: https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.aws.calls import hub_reads, reads
from app.aws.clients import AwsClients
from app.aws.translate import aws_errors
from app.aws.types import CallerIdentity


@dataclass(frozen=True)
class TemporaryCredentials:
    """An assumed role's credentials. `repr` never shows the secret parts."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime  # timezone-aware, as botocore parses it

    def __repr__(self) -> str:
        return f"TemporaryCredentials({self.access_key_id}, expires {self.expiration})"


class StsGateway:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @reads("sts:GetCallerIdentity")
    def caller_identity(self) -> CallerIdentity:
        """Raises CredentialsProblem for missing, invalid or expired credentials."""
        with aws_errors():
            raw = self._clients.client("sts").get_caller_identity()
        return CallerIdentity(raw["Account"], raw["Arn"], raw["UserId"])

    @hub_reads("sts:AssumeRole")
    def assume_role(
        self, role_arn: str, session_name: str, duration_seconds: int = 3600
    ) -> TemporaryCredentials:
        """Credentials of `role_arn` for `duration_seconds`. Raises AccessDenied when the
        role does not trust the caller (or does not exist: AWS does not say which)."""
        with aws_errors():
            raw = self._clients.client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=duration_seconds
            )["Credentials"]
        return TemporaryCredentials(
            raw["AccessKeyId"], raw["SecretAccessKey"], raw["SessionToken"], raw["Expiration"]
        )
