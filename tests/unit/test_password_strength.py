"""Issue 12, finding 6 (passwords): besides the length, RoleDesk refuses passwords attackers
try first: common and breached ones (zxcvbn's shipped list, no network), easily guessed ones,
and all-whitespace ones; on the setup page, the users page and the command line alike."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from app.auth.users import UserError, check_password
from app.cli import main


@pytest.mark.parametrize(
    "weak",
    [
        "password1234",  # the example: on the breached list
        "qwertyuiop12",
        "iloveyou1234",
        " " * 12,  # the other example
        "\t" * 12 + "  ",
        "aaaaaaaaaaaa",
        "123456789012",
        "PASSWORD1234",  # case does not help
    ],
)
def test_common_breached_and_whitespace_passwords_are_refused(weak):
    with pytest.raises(UserError) as refused:
        check_password(weak)
    assert refused.value.field == "password"


def test_a_password_made_of_the_user_name_is_refused():
    check_password("margaret-holloway!")
    with pytest.raises(UserError):
        check_password("margaret-holloway!", "margaret-holloway")


@pytest.mark.parametrize(
    "strong", ["correct horse battery staple", "kestrel harbour 71", "Tr0ub4dor&3-violet"]
)
def test_good_passwords_pass(strong):
    assert check_password(strong) == strong


def test_no_network_is_needed(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the password check tried to use the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(UserError):
        check_password("password1234")


def test_users_page_and_cli_refuse_a_breached_password(client, settings, monkeypatch):
    from tests.conftest import csrf_token_for

    form = {
        "name": "bob",
        "role": "viewer",
        "password": "password1234",
        "confirm": "password1234",
        "csrf_token": csrf_token_for(client),
    }
    response = client.post("/users", data=form)
    assert response.status_code == 422 and "most common" in response.text
    monkeypatch.setenv("ROLEDESK_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(
        main, ["users", "add", "eve", "--role", "viewer", "--password-stdin"], input=" " * 12 + "\n"
    )
    assert result.exit_code != 0 and "only spaces" in result.output
