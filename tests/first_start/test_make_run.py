"""A newcomer's first `make run` (issue 13), in a fresh clone of this checkout's commit, with a
database URL of their own (SQLite outside data/): it says how long the first start takes,
migrates that database, ends with the setup link in a box after the last install line, and
the sign-in page answers. A second `make run` installs nothing.

Slow by nature (a new .venv and `npm ci`); pip's and npm's caches are reused, as on any
developer's machine. Marked `first_start`, which `make test` runs like every other test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.conftest import free_port

pytestmark = [pytest.mark.first_start, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
BOX_LINK = re.compile(r"^# (http://\S+/setup\?token=\S+) +#$", re.M)
INSTALL_LINE = re.compile(r"pip install|npm ci|-m venv")


def clone(target: Path) -> None:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)
    subprocess.run(["git", "-C", str(target), "checkout", "--quiet", commit], check=True)


def make_run(workdir: Path, env: dict[str, str], log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `make run`; return its output once the boxed setup link is printed."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "run"],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one below
        )
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if BOX_LINK.search(text):
            return text, process
        if process.poll() is not None:
            raise AssertionError(f"make run exited {process.returncode}:\n{text[-4000:]}")
        time.sleep(1)
    stop(process)
    raise AssertionError(f"no setup link after 900 s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def sign_in_page(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sign-in", timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def test_first_make_run_in_a_fresh_clone_reaches_the_sign_in_page(tmp_path):
    workdir = tmp_path / "roledesk"
    clone(workdir)
    port = free_port()
    database = tmp_path / "elsewhere" / "my-roledesk.sqlite3"
    database.parent.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ROLEDESK_", "VIRTUAL_ENV"))},
        "ROLEDESK_DATABASE_URL": f"sqlite:///{database}",
        "ROLEDESK_PORT": str(port),
        "ROLEDESK_SANDBOX_PORT": str(free_port()),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    first, process = make_run(workdir, env, tmp_path / "first.log")
    try:
        lines = first.splitlines()
        assert "takes about 2 to 3 minutes" in first, first[:2000]
        assert database.exists()  # migrated: serve refuses an out-of-date database
        box = next(i for i, line in enumerate(lines) if BOX_LINK.match(line))
        installs = [i for i, line in enumerate(lines) if INSTALL_LINE.search(line)]
        running = [i for i, line in enumerate(lines) if "Uvicorn running" in line]
        assert installs and running, first
        assert box > max(installs) and box > max(running), first
        assert lines[box - 4].startswith("####"), lines[box - 5 : box + 4]
        assert "Sign in" in sign_in_page(port)
    finally:
        stop(process)
    # Nothing changed: the second start installs nothing and says nothing of a first start.
    second, process = make_run(workdir, env, tmp_path / "second.log")
    try:
        assert not INSTALL_LINE.search(second), second
        assert "First start" not in second, second
        assert "Sign in" in sign_in_page(port)
    finally:
        stop(process)
