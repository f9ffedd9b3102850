"""Operators' documentation keeps up with the code (as Datasette's tests/test_docs.py does)."""

import re
from pathlib import Path

from click.testing import CliRunner

from app.cli import main
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(ROLEDESK_[A-Z0-9_]+)` \|", readme, re.MULTILINE))
    expected = {f"ROLEDESK_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set()


def test_readme_first_screen_shows_run_and_test_commands():
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:20])
    assert "make run" in first_screen
    assert "make test" in first_screen


def test_every_cli_command_has_help():
    runner = CliRunner()
    for args in (
        ["--help"],
        ["serve", "--help"],
        ["db", "--help"],
        ["db", "upgrade", "--help"],
        ["permissions", "--help"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, args
        assert "Usage:" in result.output
    serve_help = runner.invoke(main, ["serve", "--help"]).output
    for option in ("--sandbox / --aws", "--host", "--port", "--profile", "--region"):
        assert option in serve_help
