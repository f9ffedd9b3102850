"""Step 2's Description column and the role page's attach search (issue 13): AWS managed
policies show AWS's own description from the vendored copy; a policy the copy does not know
and customer managed policies (AWS's ListPolicies carries no descriptions) show none."""

from __future__ import annotations

from bs4 import BeautifulSoup

from app.policy import managed_descriptions
from tests.web.test_wizard_flow import start

S3_READ_ABOUT = "Provides read only access to all buckets via the AWS Management Console."


def rows_by_name(client, draft: str, q: str) -> dict[str, dict[str, str]]:
    page = BeautifulSoup(
        client.get(f"/create-role/{draft}/permissions", params={"q": q}).text, "html.parser"
    )
    headers = [th.text for th in page.select("table.policy-table thead th")]
    assert headers == ["Policy name", "Type", "Description", "Actions"]
    rows = {}
    for tr in page.select("#policy-rows tr"):
        cells = [td.get_text(" ", strip=True) for td in tr.select("td")]
        rows[tr.select_one("td a").text] = dict(zip(headers, cells, strict=True))
    return rows


def test_known_managed_policy_shows_its_real_description(client):
    draft = start(client)
    rows = rows_by_name(client, draft, "AmazonS3ReadOnly")
    assert rows["AmazonS3ReadOnlyAccess"]["Description"] == S3_READ_ABOUT
    assert rows["AmazonS3ReadOnlyAccess"]["Type"] == "AWS managed"
    # The name links to the same search with the document open (no JavaScript needed).
    page = BeautifulSoup(
        client.get(f"/create-role/{draft}/permissions", params={"q": "AmazonS3ReadOnly"}).text,
        "html.parser",
    )
    link = page.select_one("#policy-rows td a")["href"]
    assert link == (
        f"/create-role/{draft}/permissions?q=AmazonS3ReadOnly"
        "&view=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FAmazonS3ReadOnlyAccess#policy-document"
    )
    shown = BeautifulSoup(client.get(link.split("#")[0]).text, "html.parser")
    assert S3_READ_ABOUT in shown.select_one("#policy-document").text


def test_policy_unknown_to_the_copy_and_customer_policies_show_none(client):
    draft = start(client)
    # An AWS managed policy in the sandbox that the vendored copy does not list.
    unknown = rows_by_name(client, draft, "EndUserMessagingServiceRolePolicy")
    assert unknown["EndUserMessagingServiceRolePolicy"]["Description"] == ""
    # Customer managed: the sandbox's policy has a description (GetPolicy returns it), but
    # ListPolicies does not, and nothing is made up in its place.
    customer = rows_by_name(client, draft, "AppDataReadOnly")
    assert customer["AppDataReadOnly"] == {
        "Policy name": "AppDataReadOnly",
        "Type": "Customer managed",
        "Description": "",
        "Actions": "Add Use as boundary",
    }


def test_the_page_says_where_descriptions_come_from(client):
    draft = start(client)
    page = BeautifulSoup(client.get(f"/create-role/{draft}/permissions").text, "html.parser")
    note = page.select_one(".description-source").text
    source = managed_descriptions.source()
    assert f"iam-floyd {source.version}" in note and source.published in note
    assert "Apache-2.0" in note


def test_role_page_attach_search_describes_each_policy(client):
    page = BeautifulSoup(
        client.get("/roles/web-app-ec2/policies/edit", params={"q": "AmazonS3ReadOnly"}).text,
        "html.parser",
    )
    box = page.select_one("input[name=attach][value$='policy/AmazonS3ReadOnlyAccess']")
    about = page.select_one(f"#{box['aria-describedby']}")
    assert about.text == S3_READ_ABOUT
    assert page.select_one(".description-source") is not None
