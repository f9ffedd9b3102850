"""Runtime configuration, read from ROLEDESK_* environment variables (and an optional .env).

One object, built once by the CLI or the test fixtures and passed down: nothing reads the
environment at import time, so tests can build as many differently configured apps as they like.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")


class Mode(StrEnum):
    SANDBOX = "sandbox"
    AWS = "aws"


class AccountsSource(StrEnum):
    AUTO = "auto"
    ORGANIZATIONS = "organizations"
    CONFIGURATION = "configuration"


class ConfiguredAccount(BaseModel):
    """A member account named in configuration (when Organizations is not readable)."""

    id: str = Field(pattern=r"^\d{12}$")
    name: str = Field(min_length=1, max_length=50)
    role: str | None = Field(None, pattern=r"^[\w+=,.@-]{1,64}$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROLEDESK_", env_file=".env", extra="ignore")

    mode: Mode = Field(Mode.SANDBOX, description="`sandbox` (embedded moto server) or `aws`.")
    database_url: str = Field(
        f"sqlite:///{DEFAULT_DATA_DIR / 'roledesk.sqlite3'}",
        description="SQLAlchemy URL; `postgresql+psycopg://...` in production.",
    )
    aws_profile: str | None = Field(None, description="Named profile for `aws` mode.")
    aws_region: str = Field("us-east-1", description="Default region (EC2 pages, STS, CloudTrail).")
    aws_endpoint_url: str | None = Field(
        None,
        description="Send every AWS call here (set automatically in sandbox mode); in sandbox "
        "mode, set it to join another RoleDesk's sandbox instead of starting one.",
    )
    host: str = Field("127.0.0.1", description="Address the web server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the web server listens on.")
    workers: int = Field(1, ge=1, le=32, description="Web server worker processes.")
    sandbox_port: int = Field(
        0, ge=0, le=65535, description="Port of the embedded AWS sandbox; 0 picks a free one."
    )
    sandbox_seed: bool = Field(True, description="Fill a new sandbox with example data.")
    sandbox_organization: bool = Field(
        True,
        description="With the seed, also make the sandbox an organization with three seeded "
        "member accounts (docs/multi-account.md).",
    )
    sandbox_latency_ms: int = Field(
        0,
        ge=0,
        le=5000,
        description="Sandbox mode only: add this many milliseconds to every AWS call RoleDesk "
        "makes, to see how it behaves against real AWS (50 to 300 ms a call; more with "
        "retries); 0 adds nothing.",
    )
    role_cache_seconds: int = Field(
        900, ge=0, description="How long the roles list is served from memory before a reload."
    )
    instance_cache_seconds: int = Field(
        300,
        ge=0,
        description="How long a region's EC2 instances list is served from memory before a "
        "reload (RoleDesk's own role changes show at once).",
    )
    ec2_bulk_concurrency: int = Field(
        8,
        ge=1,
        le=32,
        description="How many instances a bulk EC2 role change works on at once (AWS "
        "throttles EC2 requests per account; throttled calls are retried with backoff).",
    )
    review_unused_days: int = Field(
        90,
        ge=1,
        le=400,
        description="Access review: a role not used for this many days is reported as unused, "
        "and a service the role has not used for this many days is named as a candidate to "
        "remove (IAM tracks last use for 400 days).",
    )
    review_interval_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="Access review: a role's next review falls due this "
        "many days after the last one.",
    )
    review_intervals: dict[str, int] = Field(
        default_factory=dict,
        description="Access review: other intervals (days) by path prefix or tag, as JSON: "
        '{"path:/prod/": 30, "tag:env=prod": 30, "tag:owner": 180}; a role matching several '
        "gets the shortest.",
    )
    https: bool = Field(
        False,
        description="Browsers reach RoleDesk over HTTPS (a TLS proxy in front): `__Host-` "
        "cookie, Secure cookies and HSTS even though the proxy talks plain HTTP to RoleDesk.",
    )
    allowed_hosts: str = Field(
        "",
        description="Comma-separated Host header values accepted; empty means 127.0.0.1, "
        "localhost, ::1, testserver (Starlette's test client) and the configured host.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Addresses of a TLS proxy whose X-Forwarded-For/-Proto headers are trusted "
        "(uvicorn's forwarded_allow_ips); empty trusts none.",
    )
    openapi: bool = Field(False, description="Serve /openapi.json (signed-in users only).")
    session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="Sign out after this long without a request."
    )
    session_max_hours: int = Field(
        12, ge=1, le=24 * 7, description="Sign out this long after sign-in, active or not."
    )

    accounts_source: AccountsSource = Field(
        AccountsSource.AUTO,
        description="Where the member accounts come from: `organizations` (ListAccounts), "
        "`configuration` (ROLEDESK_ACCOUNTS) or `auto` (Organizations when readable).",
    )
    accounts: list[ConfiguredAccount] = Field(
        default_factory=list,
        description='Member accounts as JSON: [{"id": "111122223333", "name": "prod", '
        '"role": "RoleDeskAccess"}]; `role` is optional.',
    )
    member_role_name: str = Field(
        "RoleDeskAccess",
        pattern=r"^[\w+=,.@-]{1,64}$",
        description="The role RoleDesk assumes in each member account.",
    )
    member_session_seconds: int = Field(
        3600, ge=900, le=43200, description="How long assumed member-account credentials last."
    )
    credential_refresh_seconds: int = Field(
        300,
        ge=0,
        le=840,
        description="Assume the member role again this long before its credentials expire.",
    )

    @field_validator("review_intervals")
    @classmethod
    def _review_rules(cls, rules: dict[str, int]) -> dict[str, int]:
        from app.review.records import rule_problems  # imported here: no cycle at start

        if problems := rule_problems(rules):
            raise ValueError("; ".join(problems))
        return rules

    @model_validator(mode="after")
    def _latency_only_in_sandbox(self) -> Settings:
        # Real AWS has latency of its own: adding more there would only slow people down.
        if self.sandbox_latency_ms and not self.is_sandbox:
            raise ValueError(
                "ROLEDESK_SANDBOX_LATENCY_MS is for sandbox mode only; set it to 0 (or unset "
                "it) with ROLEDESK_MODE=aws"
            )
        return self

    def host_allowlist(self) -> list[str]:
        """The Host header values TrustedHostMiddleware accepts."""
        if self.allowed_hosts.strip():
            return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]
        hosts = ["127.0.0.1", "localhost", "::1", "[::1]", "testserver"]
        if self.host not in ("0.0.0.0", "::", "") and self.host not in hosts:  # noqa: S104
            hosts.append(self.host)
        return hosts

    @property
    def is_sandbox(self) -> bool:
        return self.mode is Mode.SANDBOX

    def sqlite_path(self) -> Path | None:
        """The database file when the URL is a file-backed SQLite URL, else None."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and ":memory:" not in self.database_url:
            return Path(self.database_url[len(prefix) :])
        return None
