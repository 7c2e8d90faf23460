"""local_stack/docker-compose.yaml: it parses, and it runs what the project deploys without an account."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from local_stack import server
from local_stack.aws import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "local_stack" / "docker-compose.yaml"


@pytest.fixture(scope="module")
def localstack_service() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]["localstack"]


def docker_compose(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", "compose", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("no docker CLI on this machine")


def docker_compose_config() -> dict:
    """``docker compose config`` resolves and validates the file; it needs the CLI plugin, not an engine."""
    if docker_compose("version").returncode != 0:
        pytest.skip("the docker CLI has no compose plugin (docker compose version fails)")
    result = docker_compose("-f", str(COMPOSE_FILE), "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_docker_compose_parses_the_file():
    config = docker_compose_config()
    assert config["services"]["localstack"]["image"] == "localstack/localstack:4.14.0"


def test_localstack_is_pinned_to_the_last_release_that_starts_without_an_auth_token(localstack_service):
    assert localstack_service["image"] == "localstack/localstack:4.14.0"
    assert "LOCALSTACK_AUTH_TOKEN" not in localstack_service["environment"]


def test_it_runs_the_services_the_docker_free_localstack_runs(localstack_service):
    assert localstack_service["environment"]["SERVICES"] == server.SERVICES


def test_lambda_runs_in_docker_through_the_hosts_socket(localstack_service):
    assert "/var/run/docker.sock:/var/run/docker.sock" in localstack_service["volumes"]


def test_the_functions_python_runtime_is_the_projects_lambda_image_with_every_handlers_packages(localstack_service):
    mapping = json.loads(localstack_service["environment"]["LAMBDA_RUNTIME_IMAGE_MAPPING"])
    assert mapping == {"python3.11": "ride-duration:local"}
    assert "docker build --target scoring -t ride-duration:local ." in COMPOSE_FILE.read_text()
