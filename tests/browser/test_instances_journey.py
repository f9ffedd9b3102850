"""Attach a sandbox role to a running instance, replace it, detach it: with and without
JavaScript, each step checked with boto3 against the sandbox endpoint."""

from playwright.sync_api import expect

from tests.browser.conftest import follow_progress


def instance_id(ec2, name):
    found = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])
    return found["Reservations"][0]["Instances"][0]["InstanceId"]


def live_profiles(ec2, iid):
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [iid]}]
    )["IamInstanceProfileAssociations"]
    return [a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] for a in found]


def choose(page, live_server, role_label, button):
    page.goto(f"{live_server.url}/instances")
    page.get_by_label("bastion", exact=True).check()
    if role_label:
        page.get_by_label("Role to attach").select_option(label=role_label)
    page.get_by_role("button", name=button, exact=True).click()


def wait_until_done(page):
    # The status page updates itself (htmx polling); without JavaScript the person presses
    # "Check progress", whose request waits for news (there is no timed reload: WCAG 2.2.1).
    follow_progress(page, page.locator(".outcome-summary", has_text="Done."), timeout=15)


def test_attach_replace_detach_a_role(live_server, page):
    ec2 = live_server.boto3_client("ec2")
    bastion = instance_id(ec2, "bastion")
    assert live_profiles(ec2, bastion) == []

    choose(page, live_server, "web-app-ec2", "Attach role")
    expect(page.get_by_role("heading", level=1)).to_have_text("Attach role web-app-ec2")
    page.get_by_role("button", name="Attach role on 1 instance").click()
    wait_until_done(page)
    expect(page.locator(f"#outcome-{bastion} .result")).to_have_text("Changed")
    assert live_profiles(ec2, bastion) == ["web-app-ec2"]

    choose(page, live_server, "batch-worker-ec2", "Attach role")
    expect(page.locator(".warning")).to_contain_text("bastion now carries web-app-ec2")
    page.get_by_role("button", name="Replace role on 1 instance").click()
    wait_until_done(page)
    assert live_profiles(ec2, bastion) == ["batch-worker-ec2"]

    choose(page, live_server, None, "Detach role")
    page.get_by_label("To confirm, type Detach").fill("Detach")
    page.get_by_role("button", name="Detach role from 1 instance").click()
    wait_until_done(page)
    expect(page.locator(f"#outcome-{bastion}")).to_contain_text("batch-worker-ec2")
    assert live_profiles(ec2, bastion) == []

    page.get_by_role("link", name="Back to the EC2 instances").click()
    expect(page.locator(f"#instance-{bastion} .role-cell")).to_contain_text("No role")


def test_filter_instances_by_role_and_name(live_server, page):
    import re

    page.goto(f"{live_server.url}/instances")
    expect(page.locator("#instance-rows tr")).to_have_count(6)
    page.get_by_label("Role", exact=True).select_option("web-app-ec2")
    if not page.js_enabled:  # htmx filters on change; without JavaScript, submit the form
        page.get_by_role("button", name="Filter instances").click()
    expect(page).to_have_url(re.compile(r"role=web-app-ec2"))
    expect(page.locator("#instance-rows tr")).to_have_count(2)
    page.get_by_label("Name or instance ID").fill("web-2")
    if page.js_enabled:
        page.get_by_label("Name or instance ID").press("Enter")
    else:
        page.get_by_role("button", name="Filter instances").click()
    expect(page.locator("#instance-rows tr")).to_have_count(1)
    expect(page.locator("#instance-rows")).to_contain_text("web-2")


def test_a_change_made_outside_roledesk_shows_after_refresh_list(live_server, page):
    ec2 = live_server.boto3_client("ec2")
    bastion = instance_id(ec2, "bastion")
    role_cell = page.locator(f"#instance-{bastion} .role-cell")
    page.goto(f"{live_server.url}/instances")
    expect(role_cell).to_contain_text("No role")
    expect(page.locator(".list-age time")).to_be_visible()
    made = ec2.associate_iam_instance_profile(
        InstanceId=bastion, IamInstanceProfile={"Name": "reporting-ec2"}
    )["IamInstanceProfileAssociation"]
    try:
        page.reload()
        expect(role_cell).to_contain_text("No role")  # the list is held in memory
        page.get_by_role("button", name="Refresh list").click()
        expect(role_cell).to_contain_text("reporting-ec2")
    finally:
        ec2.disassociate_iam_instance_profile(AssociationId=made["AssociationId"])
    page.get_by_role("button", name="Refresh list").click()
    expect(role_cell).to_contain_text("No role")
