"""The Dockerfile's ``web`` target, without a Docker engine.

No image is built here, so this test does what the build and ``docker run``
would: it reads the ``web`` stage, copies exactly the files its COPY lines name
(from the build context that .dockerignore leaves, as Docker sends it) into an
empty directory, and starts the stage's CMD there with the project's
environment (the Python packages Pipfile.lock pins, as the image installs
them) and the stage's ENV. A file the service needs but no COPY line names, or
one that .dockerignore keeps out of the context, fails it. Then the stage's
HEALTHCHECK command runs against the server.
"""

from __future__ import annotations

import fnmatch
import json
import os
import runpy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import requests
import yaml
from docker.utils.build import exclude_paths

from local_stack.aws import MODEL_BUCKET, MODEL_PREFIX
from tests.web_server import Server, running_gunicorn

ROOT = Path(__file__).resolve().parents[2]
STAGE = "web"
RIDE = {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    parsed: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        parsed.append((keyword.upper(), arguments.strip()))
        pending = ""
    return parsed


def exec_form(arguments: str) -> list[str]:
    """A JSON-array command; the shell form would need a shell the test cannot vouch for."""
    assert arguments.startswith("["), f"use the exec (JSON array) form, not {arguments!r}"
    return list(json.loads(arguments))


@dataclass
class Stage:
    """The instructions of one build stage that this test acts on."""

    base_image: str
    workdir: str = "/"
    copies: list[list[str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    exposed: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def stages(dockerfile: str) -> dict[str, Stage]:
    """Every named stage (``FROM image AS name``), and the last stage under the key ``""`` (the default target)."""
    found: dict[str, Stage] = {}
    stage: Stage | None = None
    for keyword, arguments in instructions(dockerfile):
        if keyword == "FROM":
            image, _, name = arguments.partition(" AS ")
            stage = Stage(base_image=image.strip())
            found[name.strip().lower()] = found[""] = stage
            continue
        if stage is None and keyword == "ARG":
            continue  # a build argument for every stage, declared before the first FROM
        assert stage is not None, f"{keyword} before FROM"
        if keyword == "WORKDIR":
            stage.workdir = str(PurePosixPath(stage.workdir) / arguments)
        elif keyword == "COPY":
            stage.copies.append(exec_form(arguments) if arguments.startswith("[") else arguments.split())
        elif keyword == "ENV":
            stage.env.update(pair.split("=", 1) for pair in arguments.split())
        elif keyword == "USER":
            stage.user = arguments
        elif keyword == "EXPOSE":
            stage.exposed += arguments.split()
        elif keyword == "HEALTHCHECK":
            stage.healthcheck = exec_form(arguments.partition(" CMD ")[2].strip())
        elif keyword == "CMD":
            stage.cmd = exec_form(arguments)
    return found


def build_context() -> set[str]:
    """The paths Docker sends as the build context: the repo less what .dockerignore excludes."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return set(exclude_paths(str(ROOT), patterns))


def copy_into(image_root: Path, stage: Stage) -> None:
    """Do the stage's COPY lines into ``image_root``, from the build context only."""
    context = build_context()
    for arguments in stage.copies:
        flags = [a for a in arguments if a.startswith("--")]
        if any(flag.startswith("--from=") for flag in flags):
            continue  # from another stage or image, not from the build context
        *sources, destination = [a for a in arguments if not a.startswith("--")]
        target = image_root / PurePosixPath(stage.workdir, destination).relative_to("/")
        for source in sources:
            pattern = str(PurePosixPath(source))  # "model_service/" -> "model_service"
            matches = sorted(path for path in context if fnmatch.fnmatchcase(path, pattern))
            assert matches, f"COPY {source}: not in the build context (missing, or excluded by .dockerignore)"
            for match in matches:
                if (ROOT / match).is_dir():
                    files = [p for p in context if p.startswith(f"{match}/") and (ROOT / p).is_file()]
                    for path in files:  # a directory's contents go into the destination
                        _copy_file(ROOT / path, target / PurePosixPath(path).relative_to(match))
                else:
                    into_directory = destination.endswith("/") or len(sources) > 1
                    _copy_file(ROOT / match, target / Path(match).name if into_directory else target)


def _copy_file(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)


@pytest.fixture(scope="module")
def web() -> Stage:
    found = stages((ROOT / "Dockerfile").read_text())
    assert STAGE in found, f"the Dockerfile has no stage named {STAGE!r}"
    return found[STAGE]


@pytest.fixture(scope="module")
def image_root(web, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("web-image")
    copy_into(root, web)
    return root


@pytest.fixture(scope="module")
def server(web, image_root, mlflow_model_dir) -> Iterator[Server]:
    """The stage's CMD, run in its WORKDIR inside the copy, on the project's Python packages."""
    project_bin = str(Path(sys.executable).parent)
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env.update(web.env)
    env.update(
        PATH=os.pathsep.join([project_bin, env.get("PATH", "")]),
        MODEL_URIS=str(mlflow_model_dir),
        MODEL_VERSIONS="image-test",
        WEB_CONCURRENCY="1",
    )
    workdir = image_root / PurePosixPath(web.workdir).relative_to("/")
    log = image_root.parent / "gunicorn.log"
    with running_gunicorn(web.cmd, workdir, env, log) as running:
        yield running


def test_the_web_stage_copies_the_service_and_gunicorn_conf_from_the_build_context(web, image_root):
    workdir = image_root / PurePosixPath(web.workdir).relative_to("/")

    assert (workdir / "gunicorn.conf.py").is_file()
    assert (workdir / "model_service" / "web.py").is_file()
    assert not list(workdir.rglob("__pycache__"))


def test_gunicorn_starts_from_the_copied_files_alone_and_predicts(server):
    response = requests.post(f"{server.url}/predict", json=RIDE, timeout=10)

    assert response.status_code == 200
    assert response.json()["model_versions"] == {"duration": "image-test"}


def test_the_healthcheck_command_passes_against_the_running_server(web, server, image_root):
    port = server.url.rpartition(":")[2]
    (exposed,) = web.exposed
    command = [part.replace(f":{exposed}/", f":{port}/") for part in web.healthcheck]
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}

    result = subprocess.run(command, env=env, cwd=image_root, capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr


def test_the_image_exposes_the_port_gunicorn_conf_binds(web, image_root):
    workdir = image_root / PurePosixPath(web.workdir).relative_to("/")

    bind = runpy.run_path(str(workdir / "gunicorn.conf.py"))["bind"]

    assert web.exposed == [bind.rpartition(":")[2]]


def test_the_web_image_runs_as_a_numeric_non_root_user(web):
    ids = web.user.split(":")

    assert all(part.isdigit() for part in ids)
    assert 0 not in {int(part) for part in ids}


def test_the_lambda_image_stays_the_default_target():
    found = stages((ROOT / "Dockerfile").read_text())

    assert found[""] is found["lambda"] is not found[STAGE]
    assert found[""].cmd == ["lambda_function.lambda_handler"]


def test_the_compose_web_service_builds_this_target_and_listens_on_loopback(web):
    service = yaml.safe_load((ROOT / "local_stack" / "docker-compose.yaml").read_text())["services"]["web"]
    (exposed,) = web.exposed

    assert service["build"]["target"] == STAGE
    assert (ROOT / "local_stack" / service["build"]["context"]).resolve() == ROOT
    assert service["ports"] == [f"127.0.0.1:{exposed}:{exposed}"]


def test_the_compose_web_service_serves_the_models_deploy_uploads_by_default():
    service = yaml.safe_load((ROOT / "local_stack" / "docker-compose.yaml").read_text())["services"]["web"]
    uploaded = [f"s3://{MODEL_BUCKET}/{MODEL_PREFIX}/ride-{target}/model" for target in ("duration", "cost")]

    assert service["environment"]["MODEL_URIS"] == f"${{MODEL_URIS:-{','.join(uploaded)}}}"
    assert service["environment"]["AWS_ENDPOINT_URL"] == "http://localstack:4566"
