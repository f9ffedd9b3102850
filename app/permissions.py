"""The IAM policy RoleDesk needs, built from the declared AWS calls."""

from __future__ import annotations

import json

# Importing the gateways registers every declared call.
import app.aws.access_analyzer
import app.aws.cloudtrail
import app.aws.ec2
import app.aws.iam
import app.aws.sts  # noqa: F401
from app.aws.calls import required_policy

__all__ = ["policy_json", "required_policy"]


def policy_json() -> str:
    return json.dumps(required_policy(), indent=2) + "\n"
