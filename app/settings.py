"""Runtime configuration, read from ROLEDESK_* environment variables (and an optional .env).

One object, built once by the CLI or the test fixtures and passed down: nothing reads the
environment at import time, so tests can build as many differently configured apps as they like.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")


class Mode(StrEnum):
    SANDBOX = "sandbox"
    AWS = "aws"


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
        None, description="Send every AWS call here (set automatically in sandbox mode)."
    )
    host: str = Field("127.0.0.1", description="Address the web server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the web server listens on.")
    workers: int = Field(1, ge=1, le=32, description="Web server worker processes.")
    sandbox_port: int = Field(
        0, ge=0, le=65535, description="Port of the embedded AWS sandbox; 0 picks a free one."
    )
    sandbox_seed: bool = Field(True, description="Fill a new sandbox with example data.")
    role_cache_seconds: int = Field(
        900, ge=0, description="How long the roles list is served from memory before a reload."
    )

    @property
    def is_sandbox(self) -> bool:
        return self.mode is Mode.SANDBOX

    def sqlite_path(self) -> Path | None:
        """The database file when the URL is a file-backed SQLite URL, else None."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and ":memory:" not in self.database_url:
            return Path(self.database_url[len(prefix) :])
        return None
