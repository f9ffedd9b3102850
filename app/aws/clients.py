"""The one place that builds boto3 clients.

Region, optional endpoint URL (the sandbox), standard retry mode and connect/read timeouts are
set here and nowhere else. A hook records the request id of each answer, so the audited path
can store it for successful calls too; another refuses to send a request carrying a character
AWS cannot accept (NUL, U+FFFF), whatever form or page it came from.
"""

from __future__ import annotations

import contextvars
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ParamValidationError

from app.aws.translate import aws_errors

if TYPE_CHECKING:
    from app.aws.sts import TemporaryCredentials

# Where an assumed role's clients get their credentials: called before each client is handed
# out; it returns the same object while the cached credentials are good (app.accounts).
CredentialSource = Callable[[], "TemporaryCredentials"]

SANDBOX_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

last_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "roledesk_last_request_id", default=None
)


def _remember_request_id(http_response: Any = None, parsed: Any = None, **_: Any) -> None:
    if isinstance(parsed, dict):
        request_id = parsed.get("ResponseMetadata", {}).get("RequestId")
        if request_id:
            last_request_id.set(str(request_id))


# Characters no AWS API accepts and that make some answers unreadable: NUL, the Unicode
# non-characters U+FFFE/U+FFFF, and lone surrogates (not encodable as UTF-8 at all).
UNSENDABLE = re.compile("[\x00\ufffe\uffff\ud800-\udfff]")


def _unsendable_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if UNSENDABLE.search(value) else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _unsendable_path(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def _refuse_unsendable(params: dict[str, Any], **_: Any) -> None:
    """Last line of defence behind the forms' own checks: a request carrying a character AWS
    cannot accept is never sent (ParamValidationError: an InvalidInput for the pages)."""
    where = _unsendable_path(params, "")
    if where:
        raise ParamValidationError(
            report=f"{where} contains a character AWS does not accept (NUL, U+FFFE, U+FFFF or "
            "a lone surrogate); nothing was sent to AWS."
        )


class AwsClients:
    """Builds and caches boto3 clients for one account connection."""

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        profile: str | None = None,
        sandbox: bool = False,
        connect_timeout: float = 5,
        read_timeout: float = 30,
        max_attempts: int = 5,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.profile = profile
        if sandbox:  # the sandbox accepts any keys; never send real ones there
            self._session = boto3.Session(
                region_name=region,
                aws_access_key_id=SANDBOX_KEYS["aws_access_key_id"],
                aws_secret_access_key=SANDBOX_KEYS["aws_secret_access_key"],
            )
        else:
            with aws_errors():  # an unknown profile fails here, before any call
                self._session = boto3.Session(profile_name=profile, region_name=region)
        self._config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=32,
        )
        self._cache: dict[tuple[str, str], Any] = {}
        self._hooks: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        # Building a client on the session is not thread-safe; members build on this same
        # session (with their own credentials), so they share this lock.
        self._build_lock = threading.Lock()
        self._source: CredentialSource | None = None
        self._credentials: TemporaryCredentials | None = None
        self._members: list[AwsClients] = []

    def for_role(self, source: CredentialSource) -> AwsClients:
        """Clients with the same region, endpoint and settings whose credentials come from
        `source` (an assumed role in a member account). Hooks registered on these clients,
        before or after, reach those clients too, so call counting sees every account."""
        member = AwsClients.__new__(AwsClients)
        member.region, member.endpoint_url, member.profile = (
            self.region,
            self.endpoint_url,
            None,
        )
        # The hub's session, not one of its own: a new boto3 Session loads and parses every
        # service model again (about 0.2 s of CPU for IAM), which with 20 accounts read side
        # by side held the GIL for seconds (issue 17). The member's credentials are passed
        # to each client it builds instead.
        member._session, member._build_lock = self._session, self._build_lock
        member._config = self._config
        member._cache, member._lock, member._members = {}, threading.Lock(), []
        member._source, member._credentials = source, None
        with self._lock:
            member._hooks = list(self._hooks)
            self._members.append(member)
        return member

    def hook_every_client(self, event: str, handler: Any) -> None:
        """Register a botocore event handler on every client, built now or later (the
        sandbox's added latency and the benchmarks' latency model use this)."""
        with self._lock:
            self._hooks.append((event, handler))
            for found in self._cache.values():
                found.meta.events.register(event, handler)
            members = list(self._members)
        for member in members:
            member.hook_every_client(event, handler)

    def _fresh_credentials(self) -> dict[str, str]:
        """With a credential source: its credentials as client keyword arguments; when it
        hands out new ones, the clients built on the old ones are dropped. Called with the
        lock held. Without one: nothing (the session's own credentials)."""
        if self._source is None:
            return {}
        credentials = self._source()
        if credentials is not self._credentials:
            self._credentials = credentials
            self._cache.clear()
        return {
            "aws_access_key_id": credentials.access_key_id,
            "aws_secret_access_key": credentials.secret_access_key,
            "aws_session_token": credentials.session_token,
        }

    def client(self, service: str, region: str | None = None) -> Any:
        """A cached client; boto3 clients are thread-safe once built, building them is not.
        Raises an AwsError when an assumed role's credentials cannot be had."""
        key = (service, region or self.region)
        with self._lock:
            credentials = self._fresh_credentials()
            found = self._cache.get(key)
            if found is None:
                with self._build_lock:
                    found = self._session.client(
                        service,  # type: ignore[call-overload]
                        region_name=key[1],
                        endpoint_url=self.endpoint_url,
                        config=self._config,
                        **credentials,
                    )
                found.meta.events.register("after-call", _remember_request_id)
                found.meta.events.register("provide-client-params", _refuse_unsendable)
                for event, handler in self._hooks:
                    found.meta.events.register(event, handler)
                self._cache[key] = found
            return found
