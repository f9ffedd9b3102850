"""Issue 12, finding 9: start-up problems end with one clear line and the right advice, no
traceback: a database stamped with a newer revision than this code knows (for `serve` and
for `roledesk db upgrade`, which cannot help), and a SQLite database RoleDesk cannot write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from app import migrate
from app.cli import main

NEWER = "0099_from_a_newer_roledesk"


def _stamp_newer(url: str) -> None:
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": NEWER})
    engine.dispose()


def _serve(url: str, tmp_path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ROLEDESK_DATABASE_URL": url,
        "ROLEDESK_MODE": "sandbox",
        "ROLEDESK_PORT": "18999",  # never reached: the start stops before listening
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "roledesk"), "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request):
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


def test_a_newer_database_stops_serve_with_one_line(any_url, tmp_path):
    _stamp_newer(any_url)
    result = _serve(any_url, tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "newer RoleDesk" in lines[0] and NEWER in lines[0]
    assert "roledesk db upgrade" not in lines[0]  # it cannot help: not the advice


def test_db_upgrade_on_a_newer_database_explains_instead_of_a_traceback(any_url):
    _stamp_newer(any_url)
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"ROLEDESK_DATABASE_URL": any_url})
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "newer RoleDesk" in result.output and "Traceback" not in result.output


def test_a_read_only_sqlite_database_stops_serve_with_one_line(sqlite_url, tmp_path):
    migrate.upgrade(sqlite_url)
    path = sqlite_url.removeprefix("sqlite:///")
    # The tests run as root, for whom file permissions do not apply: SQLite's read-only mode
    # gives the same errors as a file the server's user cannot write.
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    result = _serve(read_only, tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "read-only" in lines[0] and "permissions" in lines[0]
