"""Every field RoleDesk echoes, with every payload: shown escaped (tests/xss.py)."""

import pytest

from tests.xss import ECHO_FIELDS, PAYLOADS, assert_escaped


@pytest.mark.parametrize("field", list(ECHO_FIELDS))
def test_field_is_rendered_escaped(client, seeded, field):
    for payload in PAYLOADS:
        html = ECHO_FIELDS[field](client, seeded, payload)
        assert_escaped(html, payload)
        # The payload's text is on the page (so the field really was echoed).
        assert "roledeskxss" in html, (field, payload)


def test_checker_catches_unescaped_output():
    """The checker fails on markup it should refuse (so a pass above means something)."""
    for payload in PAYLOADS[:4]:
        with pytest.raises(AssertionError):
            assert_escaped(f"<html><body><p>{payload}</p></body></html>", payload)
