"""The users page (admins), the one-time setup link, and the `roledesk users` commands."""

from datetime import timedelta

from bs4 import BeautifulSoup
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.permissions import Role
from app.cli import main
from app.models import AuditEvent
from app.server import exposure_warning, setup_link
from app.settings import Settings
from tests.conftest import csrf_token_for, sign_in


def actions(services):
    with services.db.session() as s:
        return [(e.action, e.actor, e.target) for e in s.scalars(select(AuditEvent))]


def test_admin_adds_a_user_who_can_then_sign_in(client, web_app, seeded):
    token = csrf_token_for(client)
    form = {
        "name": "bob",
        "role": "operator",
        "password": "kestrel harbour 71",
        "confirm": "kestrel harbour 71",
    }
    response = client.post("/users", data={**form, "csrf_token": token})
    assert response.status_code == 200 and "User added." in response.text
    rows = BeautifulSoup(response.text, "html.parser").select("#user-rows tr")
    assert [r.td.text for r in rows] == ["admin", "bob"]
    assert ("roledesk:CreateUser", "admin", "roledesk:user/bob") in actions(seeded)
    with TestClient(web_app) as bob:
        assert sign_in(bob, "bob", "kestrel harbour 71").status_code == 303
        assert "operator" in bob.get("/roles").text


def test_add_user_form_errors_are_shown_beside_fields(client):
    token = csrf_token_for(client)
    bad = {"name": "bad name!", "role": "root", "password": "short", "confirm": "other"}
    response = client.post("/users", data={**bad, "csrf_token": token})
    assert response.status_code == 422
    page = BeautifulSoup(response.text, "html.parser")
    for field in ("name", "role", "password", "confirm"):
        assert page.select_one(f"#new-{field}-error"), field
    assert page.select_one("#new-name")["value"] == "bad name!"
    duplicate = {
        "name": "ADMIN",
        "role": "viewer",
        "password": "kestrel harbour 71",
        "confirm": "kestrel harbour 71",
    }
    response = client.post("/users", data={**duplicate, "csrf_token": token})
    assert response.status_code == 422 and "already a user named ADMIN" in response.text


def test_change_role_disable_enable_and_reset_password(client, client_as, web_app, seeded):
    viewer = client_as("viewer")
    token = csrf_token_for(client)
    client.post("/users/viewer-user/role", data={"role": "operator", "csrf_token": token})
    assert web_app.state.auth.users.get("viewer-user").role is Role.OPERATOR
    assert "operator" in viewer.get("/roles").text  # the role applies to the live session
    client.post(
        "/users/viewer-user/password",
        data={"password": "new kestrel harbour 72", "csrf_token": token},
    )
    assert viewer.get("/roles", follow_redirects=False).status_code == 303  # sessions ended
    with TestClient(web_app) as again:
        assert sign_in(again, "viewer-user", "new kestrel harbour 72").status_code == 303
    client.post("/users/viewer-user/disable", data={"csrf_token": token})
    assert web_app.state.auth.users.get("viewer-user").disabled
    client.post("/users/viewer-user/enable", data={"csrf_token": token})
    assert not web_app.state.auth.users.get("viewer-user").disabled
    logged = [
        a
        for a, _, t in actions(seeded)
        if t == "roledesk:user/viewer-user" and a != "roledesk:SignIn"
    ]
    assert logged[-4:] == [
        "roledesk:SetUserRole",
        "roledesk:ResetUserPassword",
        "roledesk:DisableUser",
        "roledesk:EnableUser",
    ]


def test_the_last_admin_cannot_be_demoted_or_disabled(client, web_app):
    token = csrf_token_for(client)
    response = client.post("/users/admin/role", data={"role": "viewer", "csrf_token": token})
    assert response.status_code == 422 and "only active admin" in response.text
    response = client.post("/users/admin/disable", data={"csrf_token": token})
    assert response.status_code == 422
    assert web_app.state.auth.users.get("admin").role is Role.ADMIN


def test_the_users_page_offers_the_only_admin_no_control_the_server_would_refuse(client):
    def row(name: str):
        page = BeautifulSoup(client.get("/users").text, "html.parser")
        return next(tr for tr in page.select("#user-rows tr") if tr.td.get_text() == name)

    only = row("admin")
    assert only.find("button", string="Disable admin") is None
    assert only.find("button", string="Change role of admin") is None
    assert "only active admin" in only.get_text()
    assert only.find("button", string="Reset password of admin") is not None
    token = csrf_token_for(client)
    added = client.post(
        "/users",
        data={
            "name": "second-admin",
            "role": "admin",
            "password": "another long passphrase 42",
            "confirm": "another long passphrase 42",
            "csrf_token": token,
        },
    )
    assert added.status_code in (200, 303)
    for name in ("admin", "second-admin"):  # two active admins: either may be changed
        assert row(name).find("button", string=f"Disable {name}") is not None
        assert row(name).find("button", string=f"Change role of {name}") is not None


def test_setup_link_creates_the_first_admin_once(services):
    from app.main import create_app

    link = setup_link(services)
    token = link.split("token=")[1]
    app = create_app(services)
    with TestClient(app) as browser:
        assert browser.get("/setup?token=wrong").status_code == 403
        page = browser.get(f"/setup?token={token}")
        assert page.status_code == 200
        form = {
            "token": token,
            "name": "root",
            "password": "root kestrel harbour 73",
            "confirm": "x" * 12,
        }
        bad = browser.post("/setup", data={**form, "csrf_token": csrf_token_for(browser)})
        assert bad.status_code == 422 and "differ" in bad.text
        form["confirm"] = "root kestrel harbour 73"
        done = browser.post(
            "/setup",
            data={**form, "csrf_token": csrf_token_for(browser)},
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert "root" in browser.get("/roles").text
        again = browser.get(f"/setup?token={token}")
        assert again.status_code == 404  # used, and users exist now
    assert app.state.auth.users.get("root").role is Role.ADMIN
    assert setup_link(services) is None


def test_setup_link_expires_after_15_minutes(services):
    from app.auth.setup import SetupTokens

    tokens = SetupTokens(services.db)
    token = tokens.issue()
    assert tokens.is_valid(token)
    start = tokens.clock()
    tokens.clock = lambda: start + timedelta(minutes=15, seconds=1)
    assert not tokens.is_valid(token) and not tokens.consume(token)


def test_cli_users_commands(settings, monkeypatch, services):
    monkeypatch.setenv("ROLEDESK_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    add = runner.invoke(
        main,
        ["users", "add", "carol", "--role", "operator", "--password-stdin"],
        input="carol kestrel harbour 74\n",
    )
    assert add.exit_code == 0, add.output
    prompt = runner.invoke(
        main, ["users", "add", "dave", "--role", "viewer"], input="dave kestrel harbour 75\n" * 2
    )
    assert prompt.exit_code == 0, prompt.output
    assert runner.invoke(main, ["users", "set-role", "dave", "admin"]).exit_code == 0
    assert runner.invoke(main, ["users", "disable", "carol"]).exit_code == 0
    reset = runner.invoke(
        main,
        ["users", "reset-password", "dave", "--password-stdin"],
        input="dave new kestrel harbour 76\n",
    )
    assert reset.exit_code == 0
    listed = runner.invoke(main, ["users", "list"]).output.splitlines()
    assert listed == [
        "carol\toperator\tdisabled\tall accounts",
        "dave\tadmin\tactive\tall accounts",
    ]
    short = runner.invoke(
        main, ["users", "add", "eve", "--role", "viewer", "--password-stdin"], input="short\n"
    )
    assert short.exit_code != 0 and "12 to 1024" in short.output
    assert [a for a, actor, _ in actions(services) if actor.startswith("cli:")] == [
        "roledesk:CreateUser",
        "roledesk:CreateUser",
        "roledesk:SetUserRole",
        "roledesk:DisableUser",
        "roledesk:ResetUserPassword",
    ]


def test_exposure_warning_only_off_loopback_without_https():
    assert exposure_warning(Settings(host="127.0.0.1")) is None
    assert exposure_warning(Settings(host="::1")) is None
    assert exposure_warning(Settings(host="0.0.0.0", https=True)) is None
    warning = exposure_warning(Settings(host="0.0.0.0"))
    assert warning and "plain HTTP" in warning and "ROLEDESK_HTTPS" in warning
