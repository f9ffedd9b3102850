"""Pure logic of the EC2 instances feature: picker, association choice, planning, forms."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.datastructures import FormData

from app.aws.types import Instance, InstanceProfile, ProfileAssociation, Role
from app.instances.catalog import find_choice, role_choices, trusts_ec2
from app.instances.explain import explain
from app.instances.forms import ChangeForm, clean_query
from app.instances.listing import (
    NO_ROLE,
    InstanceRow,
    InstancesQuery,
    current_associations,
    page_of,
)
from app.instances.service import ATTACH, DETACH, REASSOCIATE, REPLACE, plan_change

ACCOUNT = "123456789012"


def profile(name, *roles):
    return InstanceProfile(
        name, f"arn:aws:iam::{ACCOUNT}:instance-profile/{name}", "id", "/", roles
    )


def role(name, service):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    return Role(name, "AROA", f"arn:aws:iam::{ACCOUNT}:role/{name}", "/", datetime.now(UTC), trust)


def association(instance_id, profile_name, state="associated", aid="iip-assoc-1"):
    arn = f"arn:aws:iam::{ACCOUNT}:instance-profile/{profile_name}"
    return ProfileAssociation(aid, instance_id, arn, state)


def row(iid, state="running", assoc=None, prof=None, name=""):
    return InstanceRow(Instance(iid, name or iid, state, "t3.micro", "us-east-1a"), assoc, prof)


def test_trusts_ec2_reads_service_principals_of_allow_statements():
    assert trusts_ec2(role("a", "ec2.amazonaws.com").trust_policy)
    assert trusts_ec2(role("a", ["lambda.amazonaws.com", "ec2.amazonaws.com"]).trust_policy)
    assert not trusts_ec2(role("a", "lambda.amazonaws.com").trust_policy)
    deny = {"Statement": {"Effect": "Deny", "Principal": {"Service": "ec2.amazonaws.com"}}}
    assert not trusts_ec2(deny)
    assert not trusts_ec2("not json")


def test_role_picker_offers_profiles_and_ec2_roles_without_one():
    profiles = [profile("web", "web-role"), profile("empty"), profile("taken", "other")]
    roles = [
        role("web-role", "ec2.amazonaws.com"),
        role("new-ec2", "ec2.amazonaws.com"),
        role("taken", "ec2.amazonaws.com"),  # a profile of that name holds another role
        role("fn", "lambda.amazonaws.com"),
    ]
    choices = role_choices(profiles, roles)
    assert [(c.value, c.label) for c in choices] == [
        ("role:new-ec2", "new-ec2 (no instance profile yet: RoleDesk creates one)"),
        ("profile:taken", "other (instance profile taken)"),
        ("profile:web", "web-role (instance profile web)"),
    ]
    assert find_choice(choices, "role:new-ec2").needs_profile
    assert find_choice(choices, "profile:empty") is None


def test_the_association_being_set_up_wins_over_the_one_going_away():
    live = current_associations(
        [
            association("i-1", "old", "disassociating", "a"),
            association("i-1", "new", "associating", "b"),
            association("i-2", "gone", "disassociated", "c"),
        ]
    )
    assert live["i-1"].association_id == "b"
    assert "i-2" not in live


def test_plan_chooses_the_call_from_the_association_and_state():
    web = profile("web", "web-role")
    other = profile("other", "other-role")
    rows = [
        row("i-none"),
        row("i-running", assoc=association("i-running", "other"), prof=other),
        row("i-stopped", "stopped", association("i-stopped", "other"), other),
        row("i-same", assoc=association("i-same", "web"), prof=web),
        row("i-pending", "pending"),
        row("i-gone", "terminated"),
        row("i-moving", assoc=association("i-moving", "other", "disassociating"), prof=other),
    ]
    ids = [r.instance_id for r in rows] + ["i-unknown"]
    choice = role_choices([web], [])[0]
    plan = plan_change("us-east-1", ATTACH, ids, rows, choice)
    steps = {i.instance_id: i.step for i in plan.instances}
    assert steps == {
        "i-none": "associate",
        "i-running": REPLACE,
        "i-stopped": REASSOCIATE,
        "i-same": None,
        "i-pending": None,
        "i-gone": None,
        "i-moving": None,
        "i-unknown": None,
    }
    reasons = {i.instance_id: i.reason for i in plan.instances}
    assert "pending" in reasons["i-pending"] and "running or stopped" in reasons["i-pending"]
    assert "terminated" in reasons["i-gone"]
    assert plan.instances[1].before["role"] == "other-role"
    assert [i.instance_id for i in plan.replacing] == ["i-running", "i-stopped"]
    detach = plan_change("us-east-1", DETACH, ["i-none", "i-running"], rows)
    assert [i.step for i in detach.instances] == [None, "disassociate"]


def test_filters_and_paging_in_memory():
    web = profile("web", "web-role")
    rows = [row(f"i-{n:08x}", name=f"host-{n}") for n in range(120)]
    rows.append(row("i-ffffffff", assoc=association("i-ffffffff", "web"), prof=web, name="db"))
    assert page_of(rows, InstancesQuery("us-east-1", role="WEB-ROLE")).matching == 1
    assert page_of(rows, InstancesQuery("us-east-1", role=NO_ROLE)).matching == 120
    assert page_of(rows, InstancesQuery("us-east-1", name="host-1")).matching == 31
    last = page_of(rows, InstancesQuery("us-east-1", page=99))
    assert (last.page, last.pages, len(last.rows)) == (3, 3, 21)


def test_query_values_are_bounded():
    query = clean_query("us-east-1", name=" x " * 100, state="evil", role="<b>", page=-3)
    assert (query.state, query.role, query.page, len(query.name)) == ("", "", 1, 64)
    assert query.url(page=2).startswith("/instances?region=us-east-1")


def form(**values):
    items = []
    for key, value in values.items():
        for v in value if isinstance(value, list) else [value]:
            items.append((key, v))
    return ChangeForm.parse(
        FormData(items),
        regions=["us-east-1", "eu-west-1"],
        default_region="us-east-1",
        choices={"profile:web"},
    )


def test_change_form_errors():
    bad = form(action="attach", region="mars-1", instance_id=["i-xyz"], choice="profile:nope")
    assert set(bad.errors) == {"region", "instance_id", "choice"}
    good = form(action="detach", region="eu-west-1", instance_id=["i-0123456789abcdef0"] * 2)
    assert good.errors == {} and good.instance_ids == ["i-0123456789abcdef0"]
    good.check_confirmation()
    assert good.errors == {"confirm": "Type Detach to confirm."}
    assert form(action="delete", instance_id=["i-0123456789abcdef0"]).errors.keys() == {"action"}


def test_explain_names_the_permission_for_non_pass_role_actions():
    text = explain("AccessDenied", "denied", action="iam:CreateInstanceProfile", role_name="r")
    assert text == "Not allowed: the credentials RoleDesk uses lack iam:CreateInstanceProfile."
    gone = explain("InvalidInstanceID.NotFound", "", action="x", instance_id="i-1")
    assert gone == "There is no instance i-1 in this region any more."
