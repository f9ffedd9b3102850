"""Step 1's service picker (issue 13): the catalogue's services in the console's order, use
cases that read well and set the principal, and the errors the picker adds."""

from __future__ import annotations

import pytest

from app.wizard import catalog, picker


def test_common_services_come_first_then_the_rest_a_to_z():
    everything = catalog.search_services("")
    assert everything[: len(catalog.COMMON)] == list(catalog.COMMON)
    rest = everything[len(catalog.COMMON) :]
    assert rest == sorted(rest, key=str.lower)
    assert set(everything) == set(catalog.services())


def test_search_covers_services_use_cases_and_principals():
    assert catalog.search_services("pod identity") == ["EKS"]
    assert catalog.search_services("ecs-tasks") == ["Elastic Container Service"]
    assert "Kinesis Analytics" in catalog.search_services("flink")
    assert catalog.search_services("no such thing") == []


@pytest.mark.parametrize(
    ("service", "use_case", "label"),
    [
        ("EC2", "EC2", "EC2"),
        (
            "Elastic Container Service",
            "Elastic Container Service Task",
            "Elastic Container Service Task",
        ),
        ("EKS", "EKS - Nodegroup", "EKS - Nodegroup"),
        (
            "Kinesis Analytics",
            "Managed Service for Apache Flink",
            "Kinesis Analytics: Managed Service for Apache Flink",
        ),
    ],
)
def test_use_cases_read_well(service, use_case, label):
    assert catalog.find_case(f"{service}|{use_case}").label == label


def test_a_chosen_use_case_sets_the_principal():
    values = picker.apply({"service_name": "EKS", "use_case": "EKS|EKS - Pod Identity"})
    assert values["service"] == "pods.eks.amazonaws.com"
    assert picker.errors({**values, "entity_type": "service"}) == {}


def test_a_service_with_one_use_case_has_it_chosen_at_once():
    values = picker.apply({"service_name": "Lambda", "use_case": "", "service": "typed.example"})
    assert values["use_case"] == "Lambda|Lambda"
    assert values["service"] == "lambda.amazonaws.com"


def test_a_service_with_several_use_cases_asks_for_one():
    values = picker.apply({"service_name": "EC2", "use_case": "Lambda|Lambda"})
    assert values["use_case"] == "" and values["service"] == ""
    assert picker.errors({**values, "entity_type": "service"}) == {
        "use_case": "Choose a use case for EC2."
    }


def test_a_typed_principal_is_kept_for_another_service():
    values = picker.apply(
        {"service_name": "other", "use_case": "EC2|EC2", "service": "x.amazonaws.com"}
    )
    assert values == {"service_name": "other", "use_case": "", "service": "x.amazonaws.com"}
    assert picker.errors({**values, "entity_type": "service"}) == {}


def test_a_service_name_typed_as_a_principal_is_explained():
    errors = picker.errors({"entity_type": "service", "service_name": "", "service": "EC2"})
    assert errors["service"] == (
        "“EC2” is a service's name, not its principal: choose EC2 in the list above, or type "
        "ec2.amazonaws.com."
    )


def test_nothing_chosen_says_what_to_do():
    errors = picker.errors({"entity_type": "service", "service_name": "", "service": " "})
    assert errors["service"].startswith("Choose a service above")
    assert picker.errors({"entity_type": "account", "service": ""}) == {}


def test_the_chosen_service_stays_listed_whatever_the_search():
    built = picker.build({"service_name": "Lambda", "use_case": "Lambda|Lambda"}, "pod")
    assert built.services == ["Lambda", "EKS"]
    assert built.case is not None and built.case.principal == "lambda.amazonaws.com"


def test_suggestions_follow_the_use_case():
    nodegroup = catalog.suggested_policies("ec2.amazonaws.com", "EKS|EKS - Nodegroup")
    assert "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy" in nodegroup
    assert catalog.suggested_policies("ec2.amazonaws.com") == [catalog.SSM_CORE]


def test_a_service_role_has_no_cross_account_warning():
    """A service principal has no "AWS" key, which once read as "Another AWS account (None)
    can assume this role"; a real other account still gets the warning."""
    import json

    from app.policy import PolicyKind, analyse
    from app.wizard.trust import service_trust

    def codes(document):
        found = analyse(json.dumps(document), PolicyKind.TRUST, account_id="123456789012")
        return [f.code for f in found.findings]

    assert "TRUST_CROSS_ACCOUNT_NO_CONDITION" not in codes(service_trust("lambda.amazonaws.com"))
    other = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    assert "TRUST_CROSS_ACCOUNT_NO_CONDITION" in codes(other)
