"""`roledesk serve --aws` with missing, invalid or expired credentials: one line, exit 2, no
traceback. STS answers come from a small local HTTP server speaking STS's XML error format."""

import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROLEDESK = str(Path(sys.executable).with_name("roledesk"))

STS_ERROR = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
<RequestId>4c2b1a0e-0000-4000-8000-000000000001</RequestId></ErrorResponse>"""


@pytest.fixture
def clean_env(tmp_path):
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "ROLEDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }


def serve_aws(env, *extra):
    subprocess.run([ROLEDESK, "db", "upgrade"], env=env, check=True, capture_output=True)
    return subprocess.run(
        [ROLEDESK, "serve", "--aws", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_credentials(clean_env):
    result = serve_aws(clean_env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "NoCredentials" in lines[0]


def test_unknown_profile(clean_env):
    result = serve_aws(clean_env, "--profile", "nope")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nope" in result.stderr


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ExpiredToken", "The security token included in the request is expired"),
        ("InvalidClientTokenId", "The security token included in the request is invalid."),
    ],
)
def test_invalid_or_expired_credentials(clean_env, code, message):
    body = STS_ERROR.format(code=code, message=message).encode()

    class Sts(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(403)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Sts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **clean_env,
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "x",
        "ROLEDESK_AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
    }
    try:
        result = serve_aws(env)
    finally:
        server.shutdown()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert code in result.stderr
