"""RoleSessionName carries the RoleDesk user within AWS's rules (2-64 of [\\w+=,.@-])."""

import re

from hypothesis import given
from hypothesis import strategies as st

from app.accounts.session_name import session_name

AWS_RULE = re.compile(r"^[A-Za-z0-9_+=,.@-]{2,64}$")


def test_a_plain_user_name_is_kept():
    assert session_name("alice") == "roledesk-alice"
    assert session_name("alice.smith@example.com") == "roledesk-alice.smith@example.com"


def test_refused_characters_become_dashes():
    assert session_name("Zoë O'Brien") == "roledesk-Zo--O-Brien"


def test_long_names_are_cut_to_64():
    assert session_name("a" * 200) == ("roledesk-" + "a" * 200)[:64]


@given(st.text(max_size=300))
def test_any_user_name_gives_a_name_aws_accepts(user):
    assert AWS_RULE.match(session_name(user))
