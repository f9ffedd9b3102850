"""AWS failures as our own exception types, keeping AWS's code, message and request id.

Pages show these in plain words; the audit log stores code, message and request id.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import (
    ConnectTimeoutError as BotoConnectTimeoutError,
)


class AwsError(Exception):
    """An error answered by AWS (or by the network on the way there)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        http_status: int | None = None,
        operation: str | None = None,
        retried: int = 0,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status
        self.operation = operation
        # How many times botocore's own retries resent the request before this answer
        # (ResponseMetadata.RetryAttempts). A retried create that answers "already exists"
        # may have been made by its own first attempt, whose answer was lost.
        self.retried = retried

    @property
    def plain(self) -> str:
        """A sentence for people, before the code and request id."""
        return PLAIN_WORDS.get(self.code, self.message or self.code)


class NotFound(AwsError):
    """NoSuchEntity and the EC2 *.NotFound family."""


class AlreadyExists(AwsError):
    """EntityAlreadyExists."""


class AccessDenied(AwsError):
    """The caller lacks an IAM permission."""


class Throttled(AwsError):
    """AWS asked us to slow down, even after botocore's standard retries."""


class LimitExceeded(AwsError):
    """An IAM or EC2 quota was hit."""


class InvalidInput(AwsError):
    """AWS refused the request as malformed (policy grammar, parameter values)."""


class Conflict(AwsError):
    """DeleteConflict, IncorrectState, ConcurrentModification."""


class Unreachable(AwsError):
    """No answer from AWS: endpoint down, timeouts."""


class AnswerLost(Unreachable):
    """The request may have reached AWS, but its answer never arrived or could not be read
    (a read timeout, a connection closed mid-answer, a garbled body). Unlike a connection
    that failed before sending, AWS may have made the change: the audited path records the
    outcome as unknown and checks AWS (app.audit.audited)."""


class TookEffect(AwsError):
    """A change whose answer was lost (AnswerLost, or a retry's "already exists" / "not
    found" / conflict) that the reconciler's check found made in AWS. It keeps the original
    error's code and message, so pages still show what went wrong, but callers must treat the
    change as done: the operations engine marks the step done so a rollback undoes it."""

    def __init__(self, lost: AwsError, note: str) -> None:
        super().__init__(
            lost.code,
            lost.message,
            request_id=lost.request_id,
            http_status=lost.http_status,
            operation=lost.operation,
            retried=lost.retried,
        )
        self.lost = lost
        self.note = note

    @property
    def plain(self) -> str:
        return (
            "AWS's answer to this change was lost, but RoleDesk checked in AWS and found the "
            f"change made: {self.note}"
        )


class CredentialsProblem(AwsError):
    """Missing, invalid or expired credentials."""


PLAIN_WORDS: dict[str, str] = {
    "AccessDenied": "AWS refused: the credentials RoleDesk uses lack a permission.",
    "AccessDeniedException": "AWS refused: the credentials RoleDesk uses lack a permission.",
    "UnauthorizedOperation": "AWS refused: the credentials RoleDesk uses lack a permission.",
    "Throttling": "AWS is throttling requests; wait a moment and try again.",
    "ThrottlingException": "AWS is throttling requests; wait a moment and try again.",
    "RequestLimitExceeded": "AWS is throttling requests; wait a moment and try again.",
    "ExpiredToken": "The AWS credentials have expired; refresh them and restart RoleDesk.",
    "ExpiredTokenException": "The AWS credentials have expired; refresh them and restart RoleDesk.",
    "InvalidClientTokenId": "The AWS access key is not valid.",
    "SignatureDoesNotMatch": "The AWS secret key does not match the access key.",
    "Unreachable": "AWS could not be reached.",
    "AnswerLost": "AWS's answer was lost on the way (the request may have reached AWS): "
    "RoleDesk checks in AWS whether the change happened, and the audit log shows what it found.",
    "NoCredentials": "No AWS credentials were found.",
    "ResponseParserError": "RoleDesk could not read AWS's answer: it was not in AWS's format "
    "(a proxy or a network fault may have altered it). Try again.",
}

_BY_CODE: dict[str, type[AwsError]] = {
    "NoSuchEntity": NotFound,
    "NoSuchEntityException": NotFound,
    "EntityAlreadyExists": AlreadyExists,
    "EntityAlreadyExistsException": AlreadyExists,
    "AccessDenied": AccessDenied,
    "AccessDeniedException": AccessDenied,
    "UnauthorizedOperation": AccessDenied,
    "Throttling": Throttled,
    "ThrottlingException": Throttled,
    "RequestLimitExceeded": Throttled,
    "LimitExceeded": LimitExceeded,
    "LimitExceededException": LimitExceeded,
    "MalformedPolicyDocument": InvalidInput,
    "InvalidInput": InvalidInput,
    "ValidationError": InvalidInput,
    "InvalidParameterValue": InvalidInput,
    "DeleteConflict": Conflict,
    "IncorrectState": Conflict,
    "IncorrectInstanceState": Conflict,
    "ConcurrentModification": Conflict,
    "ExpiredToken": CredentialsProblem,
    "ExpiredTokenException": CredentialsProblem,
    "InvalidClientTokenId": CredentialsProblem,
    "SignatureDoesNotMatch": CredentialsProblem,
}


def answer_lost(exc: AwsError) -> bool:
    """Whether AWS may have made the change although the call raised `exc`: its answer was
    lost, or botocore resent the request (its own retries, after a lost answer) and the
    resend found the change already made (already exists, not found, conflict)."""
    if isinstance(exc, AnswerLost):
        return True
    return isinstance(exc, AlreadyExists | NotFound | Conflict) and exc.retried > 0


def from_client_error(exc: ClientError) -> AwsError:
    """Map a botocore ClientError to our exception, keeping code, message and request id."""
    response: dict[str, Any] = dict(exc.response)
    error = response.get("Error", {})
    meta = response.get("ResponseMetadata", {})
    code = str(error.get("Code") or "Unknown")
    cls = _BY_CODE.get(code)
    if cls is None and code.endswith(".NotFound"):
        cls = NotFound
    return (cls or AwsError)(
        code,
        str(error.get("Message") or ""),
        request_id=meta.get("RequestId") or None,
        http_status=meta.get("HTTPStatusCode"),
        operation=exc.operation_name,
        retried=int(meta.get("RetryAttempts") or 0),
    )


def from_botocore_error(exc: BotoCoreError) -> AwsError:
    """Errors raised before or without an AWS answer."""
    if isinstance(exc, NoCredentialsError):
        return CredentialsProblem("NoCredentials", str(exc))
    if isinstance(exc, ProfileNotFound | PartialCredentialsError):
        return CredentialsProblem(type(exc).__name__, str(exc))
    if isinstance(exc, EndpointConnectionError | BotoConnectTimeoutError):
        # The connection was never made: the request did not reach AWS.
        return Unreachable("Unreachable", str(exc))
    if isinstance(exc, HTTPClientError):
        # ReadTimeoutError, ConnectionClosedError and the other failures botocore wraps while
        # sending or reading: the request may have reached AWS and taken effect.
        return AnswerLost("AnswerLost", str(exc))
    if isinstance(exc, ParamValidationError):
        return InvalidInput("ParamValidation", str(exc))
    return AwsError(type(exc).__name__, str(exc))
