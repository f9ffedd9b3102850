""" "Use this role": how the role's trusted entities use it, ready to copy.

Generated from the role's actual trust policy (not from how it was created): each Allow
statement's principals and conditions give one way in: an EC2 instance, another account
(profile in ~/.aws/config and `aws sts assume-role`, with the external ID and MFA the policy
asks for), GitHub Actions (the workflow step), SAML (the console sign-in entry point), or
another AWS service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.aws.types import Role

GITHUB = "token.actions.githubusercontent.com"
SAML_SIGN_IN = "https://signin.aws.amazon.com/saml"


@dataclass(frozen=True)
class Usage:
    kind: str  # ec2, account, github, saml, service, web
    title: str
    explanation: str
    snippet: str


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _condition_value(statement: dict[str, Any], key: str) -> str | None:
    for operator in (statement.get("Condition") or {}).values():
        if isinstance(operator, dict):
            for name, value in operator.items():
                if name.lower() == key.lower():
                    values = _list(value)
                    return str(values[0]) if values else None
    return None


def _statements(role: Role) -> list[dict[str, Any]]:
    doc = role.trust_policy
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return []
    if not isinstance(doc, dict):
        return []
    return [
        s for s in _list(doc.get("Statement")) if isinstance(s, dict) and s.get("Effect") == "Allow"
    ]


def _ec2(role: Role) -> Usage:
    return Usage(
        "ec2",
        "From an EC2 instance",
        "Attach the role's instance profile to the instance (EC2 instances page). Code on the "
        "instance then gets the role's credentials from the instance metadata service by "
        "itself; nothing to configure.",
        "import boto3\n\n"
        "# The default credential chain reads the instance role (IMDSv2).\n"
        "session = boto3.Session()\n"
        'print(session.client("sts").get_caller_identity()["Arn"])\n'
        f"# -> arn:aws:sts::ACCOUNT:assumed-role/{role.name}/i-...\n",
    )


def _account(role: Role, statement: dict[str, Any], principal: str) -> Usage:
    external_id = _condition_value(statement, "sts:ExternalId")
    mfa = _condition_value(statement, "aws:MultiFactorAuthPresent") is not None
    config = [f"[profile {role.name}]", f"role_arn = {role.arn}", "source_profile = default"]
    command = [
        "aws sts assume-role",
        f"  --role-arn {role.arn}",
        f"  --role-session-name {role.name[:50]}-session",
    ]
    if external_id:
        config.append(f"external_id = {external_id}")
        command.append(f"  --external-id {external_id}")
    if mfa:
        config.append("mfa_serial = arn:aws:iam::YOUR_ACCOUNT:mfa/YOUR_MFA_DEVICE")
        command += [
            "  --serial-number arn:aws:iam::YOUR_ACCOUNT:mfa/YOUR_MFA_DEVICE",
            "  --token-code 123456",
        ]
    return Usage(
        "account",
        f"From {principal}",
        "Add this profile to ~/.aws/config on the trusted side (source_profile names "
        "credentials of the trusted account), then use --profile "
        f"{role.name}; or call AssumeRole directly."
        + (" The trust policy requires this external ID." if external_id else "")
        + (" The trust policy requires MFA." if mfa else ""),
        "\n".join(config) + "\n\n# or\n" + " \\\n".join(command) + "\n",
    )


def _github(role: Role, region: str) -> Usage:
    return Usage(
        "github",
        "From GitHub Actions",
        "In the workflow of a repository the trust policy allows: request an OIDC token "
        "(id-token: write) and let the official action assume the role.",
        "permissions:\n"
        "  id-token: write\n"
        "  contents: read\n"
        "steps:\n"
        "  - uses: aws-actions/configure-aws-credentials@v4\n"
        "    with:\n"
        f"      role-to-assume: {role.arn}\n"
        f"      aws-region: {region}\n",
    )


def _saml(role: Role, provider: str) -> Usage:
    return Usage(
        "saml",
        "Signing in through SAML",
        f"Your identity provider posts its SAML response to {SAML_SIGN_IN}; the response's "
        "https://aws.amazon.com/SAML/Attributes/Role attribute must carry the role ARN and "
        "the provider ARN, separated by a comma.",
        f"Sign-in URL (ACS): {SAML_SIGN_IN}\nRole attribute value: {role.arn},{provider}\n",
    )


def usages(role: Role, region: str) -> list[Usage]:
    found: dict[str, Usage] = {}
    for statement in _statements(role):
        principal = statement.get("Principal")
        if not isinstance(principal, dict):
            continue
        for service in _list(principal.get("Service")):
            if service == "ec2.amazonaws.com":
                found.setdefault("ec2", _ec2(role))
            else:
                found.setdefault(
                    f"service:{service}",
                    Usage(
                        "service",
                        f"By {service}",
                        f"{service} assumes the role itself: give the service the role ARN "
                        "where it asks for an execution or service role.",
                        f"{role.arn}\n",
                    ),
                )
        for aws in _list(principal.get("AWS")):
            found.setdefault(f"account:{aws}", _account(role, statement, str(aws)))
        for federated in _list(principal.get("Federated")):
            federated = str(federated)
            if federated.endswith(GITHUB):
                found.setdefault("github", _github(role, region))
            elif ":saml-provider/" in federated:
                found.setdefault(f"saml:{federated}", _saml(role, federated))
            else:
                found.setdefault(
                    f"web:{federated}",
                    Usage(
                        "web",
                        f"With a web identity token from {federated.rsplit('/', 1)[-1]}",
                        "Exchange the provider's token for credentials with "
                        "AssumeRoleWithWebIdentity.",
                        "aws sts assume-role-with-web-identity \\\n"
                        f"  --role-arn {role.arn} \\\n"
                        "  --role-session-name my-session \\\n"
                        "  --web-identity-token file://token.jwt\n",
                    ),
                )
    return list(found.values())
