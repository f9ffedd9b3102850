"""docker-compose.yml checked by the real Compose binary; the image never mounts ~/.aws."""

import json
import os
import subprocess
from pathlib import Path

import compose
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_binary() -> str:
    return os.path.join(os.path.dirname(compose.__file__), "docker-compose")


def test_compose_file_is_valid():
    result = subprocess.run(
        [compose_binary(), "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_binary_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  app:\n    image: x\n    depends_on: [missing]\n")
    result = subprocess.run(
        [compose_binary(), "-f", str(broken), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


def test_no_aws_credentials_are_mounted_and_the_image_runs_unprivileged():
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in config["services"].values():
        for volume in service.get("volumes", []):
            assert ".aws" not in str(volume)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "\nUSER roledesk\n" in dockerfile


SCALED = ("config", "--format", "json")


def test_scaled_profile_runs_two_replicas_behind_a_proxy_with_health_checks():
    """`docker compose --profile scaled up proxy` (docs/scaling.md): two replicas on one
    PostgreSQL and one sandbox, migrated once, behind nginx; each has a health check."""
    result = subprocess.run(
        [compose_binary(), "-f", str(ROOT / "docker-compose.yml"), "--profile", "scaled", *SCALED],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    replica, proxy = services["replica"], services["proxy"]
    assert replica["deploy"]["replicas"] == 2
    assert "postgres:5432" in replica["environment"]["ROLEDESK_DATABASE_URL"]
    assert replica["environment"]["ROLEDESK_AWS_ENDPOINT_URL"] == "http://sandbox:5000"
    assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert proxy["depends_on"]["replica"]["condition"] == "service_healthy"
    for name in ("replica", "proxy", "sandbox", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    assert "server replica:8000;" in json.loads(result.stdout)["configs"]["proxy_conf"]["content"]
