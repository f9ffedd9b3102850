"""Managed policy documents are cached, but never served for a different policy: one deleted
and made again under the same name (same ARN, same version id "v1") is read afresh."""

from __future__ import annotations

import json

from app.policy.role_review import managed_document
from app.services import Services


def _document(action: str) -> str:
    statement = {"Effect": "Allow", "Action": action, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_a_policy_made_again_under_its_name_is_not_served_from_the_old_cache(
    services: Services,
) -> None:
    iam = services.clients.client("iam")
    arn = iam.create_policy(PolicyName="Recreated", PolicyDocument=_document("s3:GetObject"))[
        "Policy"
    ]["Arn"]
    first = managed_document(services.iam, arn)
    assert first is not None
    assert first[1]["Statement"][0]["Action"] == "s3:GetObject"

    iam.delete_policy(PolicyArn=arn)
    again = iam.create_policy(PolicyName="Recreated", PolicyDocument=_document("iam:PassRole"))
    assert again["Policy"]["Arn"] == arn
    assert again["Policy"]["DefaultVersionId"] == "v1"  # the old cache key alone would match

    second = managed_document(services.iam, arn)
    assert second is not None
    assert second[1]["Statement"][0]["Action"] == "iam:PassRole"
