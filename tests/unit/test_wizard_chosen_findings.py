"""Step 2's policy checks of the chosen policies are remembered per chosen set, and a policy
whose document changed under the same ARN and version (recreated) is checked again."""

from __future__ import annotations

from app.aws.types import ManagedPolicy
from app.wizard import permissions_routes
from app.wizard.permissions_routes import _chosen_findings

ARN = "arn:aws:iam::123456789012:policy/Chosen"
ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}


class FakeWizard:
    """What _chosen_findings uses of the wizard: the policy index and the document cache."""

    def __init__(self, document):
        self.document = document
        self.policy = ManagedPolicy("Chosen", ARN, "/", "v1", 0, False)
        self.policies = self

    def get(self, arn):
        return self.policy if arn == ARN else None

    def managed_document(self, policy):
        return self.document


def test_findings_are_remembered_and_follow_the_document(monkeypatch):
    scans = []
    real = permissions_routes.role_risks
    monkeypatch.setattr(
        permissions_routes, "role_risks", lambda *a, **k: scans.append(1) or real(*a, **k)
    )
    wizard = FakeWizard(ADMIN)
    chosen = [(ARN, wizard.policy)]
    first = _chosen_findings(wizard, chosen, "")
    assert "ADMIN_ACCESS" in {f.code for f in first}
    again = _chosen_findings(wizard, chosen, "")
    assert again == first and len(scans) == 1
    # The same ARN and version with another document (the policy was deleted and made again).
    wizard.document = READ
    changed = _chosen_findings(wizard, chosen, "")
    assert "ADMIN_ACCESS" not in {f.code for f in changed} and len(scans) == 2
