"""Region names known to botocore's endpoint data (no AWS call), for choices that must not
depend on the account: the regional AWS sign-in endpoints offered for SAML trust."""

from __future__ import annotations

import functools

import boto3


@functools.cache
def commercial_regions() -> tuple[str, ...]:
    """The aws partition's regions (every one has a regional sign-in endpoint)."""
    return tuple(boto3.session.Session().get_available_regions("ec2") or ())
