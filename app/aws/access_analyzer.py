"""IAM Access Analyzer: ValidatePolicy, AWS's own policy checks, called on real AWS only.

moto has no Access Analyzer, so in the sandbox RoleDesk's local checks (app.policy) stand
alone. Trust policies are validated as RESOURCE_POLICY of the type
AWS::IAM::AssumeRolePolicyDocument; identity and boundary policies as IDENTITY_POLICY.
"""

from __future__ import annotations

from typing import Any

from app.aws.calls import reads
from app.aws.clients import AwsClients
from app.aws.translate import aws_errors

TRUST_RESOURCE_TYPE = "AWS::IAM::AssumeRolePolicyDocument"


class AccessAnalyzerGateway:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @reads("access-analyzer:ValidatePolicy")
    def validate_policy(self, document: str, *, trust: bool) -> list[dict[str, Any]]:
        """Every finding of ValidatePolicy for `document` (all pages)."""
        kwargs: dict[str, Any] = {"policyDocument": document}
        if trust:
            kwargs["policyType"] = "RESOURCE_POLICY"
            kwargs["validatePolicyResourceType"] = TRUST_RESOURCE_TYPE
        else:
            kwargs["policyType"] = "IDENTITY_POLICY"
        client = self._clients.client("accessanalyzer")
        findings: list[dict[str, Any]] = []
        with aws_errors():
            while True:
                page = client.validate_policy(**kwargs)
                findings.extend(page.get("findings", []))
                token = page.get("nextToken")
                if not token:
                    return findings
                kwargs["nextToken"] = token
