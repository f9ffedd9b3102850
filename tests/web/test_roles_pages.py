"""Roles list and detail through the ASGI app, with and without htmx."""

from bs4 import BeautifulSoup

from app.audit.audited import AuditContext, Change
from app.wizard.trust import service_trust
from tests.conftest import csrf_token_for


def soup(response):
    return BeautifulSoup(response.text, "html.parser")


def role_names(page):
    return [a.text for a in page.select("#role-rows td.role-name a")]


# Pages whose own context has a variable of the layout's name once showed it in the header:
# the role change pages said "form", "review" or "revoke" where the header says "Sandbox".
HEADER_PAGES = [
    "/roles",
    "/roles/web-app-ec2",
    *(
        f"/roles/web-app-ec2/{part}"
        for part in (
            "trust/edit",
            "trust/rebuild",
            "settings/edit",
            "policies/edit",
            "inline/edit",
            "boundary/edit",
            "tags/edit",
            "revoke",
            "delete",
        )
    ),
    "/create-role",
    "/instances",
    "/audit",
    "/users",
    "/accounts",
]


def test_the_header_names_the_sandbox_on_every_page(client):
    for url in HEADER_PAGES:
        response = client.get(url)
        assert response.status_code == 200, url
        assert soup(response).select_one(".topbar .mode").text == "Sandbox", url


def test_each_change_page_is_named_for_what_it_does(client):
    """The window's title and the breadcrumb's last item name the page's task (they all
    said "change"); the breadcrumb links the role."""
    for part, task in (
        ("trust/edit", "Edit the trust policy"),
        ("settings/edit", "Edit the settings"),
        ("policies/edit", "Managed policies"),
        ("inline/edit", "Inline policy"),
        ("boundary/edit", "Permissions boundary"),
        ("tags/edit", "Tags"),
        ("revoke", "Revoke sessions"),
        ("delete", "Delete"),
    ):
        page = soup(client.get(f"/roles/web-app-ec2/{part}"))
        assert page.select_one("title").text.startswith(f"{task}: web-app-ec2 · "), part
        crumbs = page.select("nav[aria-label=breadcrumb] li")
        assert [c.text for c in crumbs] == ["Roles", "web-app-ec2", task], part
        assert crumbs[1].a["href"] == "/roles/web-app-ec2"


def test_full_page_has_layout_sandbox_banner_and_every_role(client, seeded):
    response = client.get("/roles")
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    page = soup(response)
    assert page.select_one(".sandbox-banner code").text == seeded.sandbox_endpoint
    assert "123456789012" in page.select_one(".account").text
    assert page.select_one(".mode").text == "Sandbox"
    names = role_names(page)
    assert names == sorted(names) and "web-app-ec2" in names and len(names) == 16
    row = page.find("a", string="github-actions-deploy").find_parent("tr")
    assert "Identity provider: token.actions.githubusercontent.com" in row.text


def test_htmx_request_gets_only_the_results_fragment(client):
    response = client.get("/roles?q=lambda", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["vary"] == "HX-Request"
    assert "<html" not in response.text
    assert role_names(soup(response)) == ["orders-lambda", "thumbnailer-lambda"]


def test_boosted_and_history_restore_requests_get_the_whole_page(client):
    for header in ("HX-Boosted", "HX-History-Restore-Request"):
        response = client.get("/roles", headers={"HX-Request": "true", header: "true"})
        assert "<html" in response.text


def test_search_without_javascript_is_a_plain_get(client):
    page = soup(client.get("/roles?q=EC2"))
    assert role_names(page) == ["batch-worker-ec2", "reporting-ec2", "web-app-ec2"]
    assert page.select_one("#role-search-q")["value"] == "EC2"


def test_sort_and_paging(client):
    page = soup(client.get("/roles?sort=name&order=desc&per_page=25"))
    names = role_names(page)
    assert names == sorted(names, reverse=True)
    first = role_names(soup(client.get("/roles?per_page=5000&page=1")))
    assert len(first) == 16  # unknown page size falls back to 25
    page1 = soup(client.get("/roles?per_page=50&page=1"))
    assert "Page 1 of 1" in page1.select_one(".pager").text


def test_bad_query_values_give_a_page_not_a_500(client):
    for url in (
        "/roles?page=abc",
        "/roles?page=-4",
        "/roles?q=" + "x" * 500,
        "/roles?sort=evil&order=sideways",
    ):
        response = client.get(url)
        assert response.status_code in (200, 422), url
        assert "Traceback" not in response.text


def test_role_change_through_roledesk_shows_at_once(client, seeded):
    client.get("/roles")  # loads the list into memory
    trust = service_trust("ec2.amazonaws.com")
    arn = f"arn:aws:iam::{seeded.identity.account}:role/brand-new"
    seeded.audited.call(
        AuditContext(), Change(arn), seeded.iam.create_role, name="brand-new", trust_policy=trust
    )
    assert "brand-new" in role_names(soup(client.get("/roles?q=brand")))


def test_refresh_needs_csrf_and_reloads(client):
    assert client.post("/roles/refresh").status_code == 403
    token = csrf_token_for(client)
    response = client.post("/roles/refresh", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/roles"


def test_last_activity_fragment_and_no_js_fallback(client):
    page = soup(client.get("/roles"))
    loader = page.select_one("[hx-get^='/roles/last-activity']")
    assert loader is not None
    fragment = client.get(loader["hx-get"], headers={"HX-Request": "true"})
    cells = soup(fragment).select("td[hx-swap-oob]")
    assert len(cells) == 16
    with_activity = soup(client.get("/roles?activity=1"))
    assert not with_activity.select("[hx-get^='/roles/last-activity']")


def test_role_detail_sections(client, seeded):
    page = soup(client.get("/roles/reporting-ec2"))
    assert page.h1.text == "reporting-ec2"
    summary = page.select_one("#summary").text
    assert "arn:aws:iam::123456789012:role/reporting-ec2" in summary
    assert "DeveloperBoundary" in summary
    assert "ReportsBucketWrite" in page.select_one("#permissions").text
    assert '"sts:AssumeRole"' in page.select_one("#trust pre").text
    assert "finance" in page.select_one("#tags").text
    assert "reporting-ec2" in page.select_one("#instance-profiles").text
    policy_link = soup(client.get("/roles/web-app-ec2")).select_one("#permissions a")
    policy = client.get(policy_link["href"])
    assert policy.status_code == 200 and "Policy document" in policy.text


def test_unknown_role_says_there_is_no_such_role(client):
    response = client.get("/roles/does-not-exist")
    assert response.status_code == 404
    page = soup(response)
    assert page.select_one("h1").text == "Not found"
    assert "There is no role named does-not-exist." in page.select_one("main").text
    assert page.select_one("main a[href='/roles']").text == "Go to the roles list"
    assert "Traceback" not in response.text


def test_a_page_that_does_not_exist_says_so_in_plain_words(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    text = soup(response).select_one("main").text
    assert "There is no page at this address" in text
    assert "Not Found" not in text


def test_aws_error_page_shows_code_message_and_request_id(client, seeded, monkeypatch):
    from app.aws.errors import AccessDenied

    def denied(name):
        raise AccessDenied(
            "AccessDenied",
            "not authorized to perform iam:GetRole",
            request_id="abc-123",
            operation="GetRole",
        )

    monkeypatch.setattr(seeded.iam, "get_role", denied)
    response = client.get("/roles/web-app-ec2")
    assert response.status_code == 403
    text = soup(response).select_one(".aws-error").text
    assert "AccessDenied" in text and "abc-123" in text and "GetRole" in text


def test_last_activity_comes_from_get_role(client, seeded):
    fragment = client.get(
        "/roles/last-activity?name=web-app-ec2&name=reporting-ec2", headers={"HX-Request": "true"}
    )
    cells = {td["id"]: td for td in soup(fragment).select("td")}
    used = seeded.iam.get_role("web-app-ec2").last_used.last_used
    assert cells["last-used-web-app-ec2"].time["datetime"] == used.isoformat()
    assert cells["last-used-reporting-ec2"].text.strip() == "None in the last 400 days"


def test_sort_by_created_follows_aws_creation_dates(client, seeded):
    created = {r.name: r.created for r in seeded.iam.list_roles()}
    names = role_names(soup(client.get("/roles?sort=created&order=desc")))
    assert [created[n] for n in names] == sorted((created[n] for n in names), reverse=True)


def test_list_reloads_after_its_ttl(seeded, monkeypatch):
    from app.roles.inventory import RoleInventory

    now = [0.0]
    inventory = RoleInventory(seeded.iam, ttl_seconds=60, clock=lambda: now[0])
    assert inventory.page().total == 16
    trust = service_trust("ec2.amazonaws.com")
    seeded.audited.call(
        AuditContext(),
        Change("made-elsewhere"),
        seeded.iam.create_role,
        name="made-elsewhere",
        trust_policy=trust,
    )
    now[0] = 59
    assert inventory.page().total == 16  # still the cached list
    now[0] = 61
    assert inventory.page().total == 17


def test_the_aws_cli_sees_what_roledesk_shows(client, seeded):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    aws = str(Path(sys.executable).with_name("aws"))
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "any",
        "AWS_SECRET_ACCESS_KEY": "any",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result = subprocess.run(
        [aws, "--endpoint-url", seeded.sandbox_endpoint, "iam", "list-roles", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    from_cli = sorted(r["RoleName"] for r in json.loads(result.stdout)["Roles"])
    assert from_cli == role_names(soup(client.get("/roles?per_page=50")))


def test_unknown_address_keeps_the_signed_in_layout(client, anonymous_client):
    signed_in = soup(client.get("/no-such-page"))
    assert signed_in.select_one("nav[aria-label=Main]") is not None
    assert "admin" in signed_in.select_one("header").text
    anonymous = anonymous_client.get("/no-such-page")
    assert anonymous.status_code == 404
    assert soup(anonymous).select_one("nav[aria-label=Main]") is None
