"""EC2 calls RoleDesk makes: instances and their IAM instance profile associations.

moto keeps DescribeInstances' IamInstanceProfile stale after a Replace, so the association
state comes from DescribeIamInstanceProfileAssociations (see the reference notes, B1).
API reference: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.aws.calls import changes, reads, sandbox_changes
from app.aws.clients import AwsClients
from app.aws.translate import aws_errors
from app.aws.types import Instance, ProfileAssociation


def _instance(raw: dict[str, Any]) -> Instance:
    tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags", [])}
    return Instance(
        instance_id=raw["InstanceId"],
        name=tags.get("Name", ""),
        state=raw.get("State", {}).get("Name", "unknown"),
        instance_type=raw.get("InstanceType", ""),
        availability_zone=raw.get("Placement", {}).get("AvailabilityZone", ""),
        launched=raw.get("LaunchTime"),
        profile_arn=(raw.get("IamInstanceProfile") or {}).get("Arn"),
    )


def _association(raw: dict[str, Any]) -> ProfileAssociation:
    return ProfileAssociation(
        association_id=raw["AssociationId"],
        instance_id=raw["InstanceId"],
        profile_arn=raw.get("IamInstanceProfile", {}).get("Arn", ""),
        state=raw.get("State", ""),
    )


class Ec2Gateway:
    """EC2 in one region of one account connection."""

    def __init__(self, clients: AwsClients, region: str | None = None) -> None:
        self._clients = clients
        self.region = region or clients.region

    @property
    def _ec2(self) -> Any:
        return self._clients.client("ec2", self.region)

    def _pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        with aws_errors():
            for page in self._ec2.get_paginator(operation).paginate(**kwargs):
                yield from page.get(key, [])

    @reads("ec2:DescribeRegions")
    def list_regions(self) -> list[str]:
        with aws_errors():
            raw = self._ec2.describe_regions()["Regions"]
        return sorted(r["RegionName"] for r in raw)

    @reads("ec2:DescribeInstances")
    def list_instances(self, instance_ids: list[str] | None = None) -> list[Instance]:
        kwargs: dict[str, Any] = {"InstanceIds": instance_ids} if instance_ids else {}
        if not instance_ids:
            kwargs["PaginationConfig"] = {"PageSize": 1000}
        return [
            _instance(i)
            for reservation in self._pages("describe_instances", "Reservations", **kwargs)
            for i in reservation.get("Instances", [])
        ]

    @reads("ec2:DescribeInstances")
    def find_instances(self, instance_ids: list[str]) -> list[Instance]:
        """The instances among `instance_ids` that exist. Unlike `list_instances(ids)`, an
        unknown id is simply absent instead of failing the whole call
        (InvalidInstanceID.NotFound), so one bad id cannot sink a bulk action."""
        found: list[Instance] = []
        for start in range(0, len(instance_ids), 200):  # AWS takes 200 values per filter
            chunk = instance_ids[start : start + 200]
            found.extend(
                _instance(i)
                for reservation in self._pages(
                    "describe_instances",
                    "Reservations",
                    Filters=[{"Name": "instance-id", "Values": chunk}],
                )
                for i in reservation.get("Instances", [])
            )
        return found

    @reads("ec2:DescribeIamInstanceProfileAssociations")
    def list_associations(self, instance_ids: list[str] | None = None) -> list[ProfileAssociation]:
        kwargs: dict[str, Any] = {"PaginationConfig": {"PageSize": 1000}}
        if instance_ids:
            kwargs["Filters"] = [{"Name": "instance-id", "Values": instance_ids}]
        return [
            _association(a)
            for a in self._pages(
                "describe_iam_instance_profile_associations",
                "IamInstanceProfileAssociations",
                **kwargs,
            )
        ]

    @changes("ec2:AssociateIamInstanceProfile", "iam:PassRole")
    def associate_profile(self, instance_id: str, profile_arn: str) -> ProfileAssociation:
        with aws_errors():
            raw = self._ec2.associate_iam_instance_profile(
                InstanceId=instance_id, IamInstanceProfile={"Arn": profile_arn}
            )
        return _association(raw["IamInstanceProfileAssociation"])

    @changes("ec2:ReplaceIamInstanceProfileAssociation", "iam:PassRole")
    def replace_profile(self, association_id: str, profile_arn: str) -> ProfileAssociation:
        with aws_errors():
            raw = self._ec2.replace_iam_instance_profile_association(
                AssociationId=association_id, IamInstanceProfile={"Arn": profile_arn}
            )
        return _association(raw["IamInstanceProfileAssociation"])

    @changes("ec2:DisassociateIamInstanceProfile")
    def disassociate_profile(self, association_id: str) -> ProfileAssociation:
        with aws_errors():
            raw = self._ec2.disassociate_iam_instance_profile(AssociationId=association_id)
        return _association(raw["IamInstanceProfileAssociation"])

    # Sandbox seeding only: RoleDesk never launches or stops instances on real AWS. -------

    @sandbox_changes("ec2:RunInstances")
    def run_instance(
        self, *, name: str, image_id: str, instance_type: str, profile_name: str | None = None
    ) -> Instance:
        kwargs: dict[str, Any] = {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}
            ],
        }
        if profile_name:
            kwargs["IamInstanceProfile"] = {"Name": profile_name}
        with aws_errors():
            raw = self._ec2.run_instances(**kwargs)
        return _instance(raw["Instances"][0])

    @sandbox_changes("ec2:StopInstances")
    def stop_instance(self, instance_id: str) -> None:
        with aws_errors():
            self._ec2.stop_instances(InstanceIds=[instance_id])
