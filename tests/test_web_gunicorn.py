"""The web service as deployed: the project's gunicorn and gunicorn.conf.py, over real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local_stack.server import free_port

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).parent / "gunicorn"
RIDE = {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer {url}/health within {timeout} s")


@pytest.fixture(scope="module")
def server_url(model_bin, tmp_path_factory) -> Iterator[str]:
    if not GUNICORN.exists():
        pytest.skip(f"{GUNICORN} is absent; run the tests with the project's .venv/bin/python")
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {**os.environ, "MODEL_URI": str(model_bin), "MODEL_VERSION": "gunicorn-test", "WEB_CONCURRENCY": "2"}
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [str(GUNICORN), f"--bind=127.0.0.1:{port}", "model_service.web:app"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, server, log)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_gunicorn_serves_health_with_the_model_from_model_uri(server_url, model_bin):
    body = requests.get(f"{server_url}/health", timeout=5).json()

    assert body == {"status": "ok", "model_loaded": True, "model_version": "gunicorn-test", "model_uri": str(model_bin)}


def test_gunicorn_predicts_a_ride(server_url):
    response = requests.post(f"{server_url}/predict", json={**RIDE, "ride_id": 1}, timeout=5)

    assert response.status_code == 200
    body = response.json()
    assert body["ride_id"] == 1
    assert body["model_version"] == "gunicorn-test"
    assert isinstance(body["duration"], float)


def test_gunicorn_predicts_a_list_of_rides(server_url):
    response = requests.post(f"{server_url}/predict", json=[RIDE] * 100, timeout=5)

    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 100


def test_gunicorn_answers_concurrent_clients_identically(server_url):
    from concurrent.futures import ThreadPoolExecutor

    def post(_: int) -> float:
        return requests.post(f"{server_url}/predict", json=RIDE, timeout=10).json()["duration"]

    with ThreadPoolExecutor(8) as pool:
        durations = set(pool.map(post, range(32)))

    assert len(durations) == 1


def test_gunicorn_rejects_a_body_over_the_default_limit_with_413(server_url):
    body = b"[" + b",".join([b'{"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}'] * 20_000) + b"]"

    response = requests.post(
        f"{server_url}/predict", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )

    assert response.status_code == 413
    assert "error" in response.json()


def test_gunicorn_answers_a_bad_ride_with_400_json(server_url):
    response = requests.post(f"{server_url}/predict", json={**RIDE, "trip_distance": "far"}, timeout=5)

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "trip_distance"
