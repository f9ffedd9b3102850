"""Turn botocore exceptions (and answers botocore could not read) into ours at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from app.aws.errors import AnswerLost, from_botocore_error, from_client_error


@contextmanager
def aws_errors() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        raise from_client_error(exc) from exc
    except BotoCoreError as exc:
        raise from_botocore_error(exc) from exc
    except ResponseParserError as exc:
        # Not a BotoCoreError: an answer botocore could not read (a proxy's HTML page, a
        # truncated or garbled body). Shown in plain words like any AWS error. An answer came
        # back, so the request reached AWS: a change may have been made (AnswerLost).
        raise AnswerLost("ResponseParserError", str(exc)[:500]) from exc
