"""Turn botocore exceptions into ours at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from app.aws.errors import from_botocore_error, from_client_error


@contextmanager
def aws_errors() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        raise from_client_error(exc) from exc
    except BotoCoreError as exc:
        raise from_botocore_error(exc) from exc
