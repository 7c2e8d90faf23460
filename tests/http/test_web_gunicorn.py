"""The web service as deployed: the project's gunicorn and gunicorn.conf.py, over real HTTP on 127.0.0.1.

What gunicorn decides (chunked bodies, slow clients, requests in parallel) is
tested here rather than through Flask's test client.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from model_service.config import Settings
from tests.web_server import GUNICORN, Server, running_gunicorn

ROOT = Path(__file__).resolve().parents[2]
RIDE = {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}
RIDE_JSON = b'{"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}'
LIMIT = Settings().web_max_body_bytes


def _gunicorn(
    mlflow_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, **settings: str
) -> AbstractContextManager[Server]:
    """The project's gunicorn from the repo root, serving ``mlflow_model_dir`` with these settings (environment)."""
    env = {**os.environ, "MODEL_URIS": str(mlflow_model_dir), **settings}
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    return running_gunicorn([str(GUNICORN), "model_service.web:app"], ROOT, env, log)


@pytest.fixture(scope="module")
def server(mlflow_model_dir, cost_model_dir, tmp_path_factory) -> Iterator[Server]:
    """Serving both models, as deployed: duration and cost."""
    with _gunicorn(
        mlflow_model_dir,
        tmp_path_factory,
        MODEL_URIS=f"{mlflow_model_dir},{cost_model_dir}",
        MODEL_VERSIONS="gunicorn-test,gunicorn-cost",
        WEB_CONCURRENCY="2",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def server_url(server) -> str:
    return server.url


VERSIONS = {"duration": "gunicorn-test", "cost": "gunicorn-cost"}


def test_gunicorn_serves_health_with_the_model_versions(server_url):
    body = requests.get(f"{server_url}/health", timeout=5).json()

    assert body == {"status": "ok", "model_loaded": True, "model_versions": VERSIONS}


def test_gunicorn_predicts_a_rides_duration_and_cost(server_url):
    response = requests.post(f"{server_url}/predict", json={**RIDE, "ride_id": 1}, timeout=5)

    assert response.status_code == 200
    body = response.json()
    assert body["ride_id"] == 1
    assert body["model_versions"] == VERSIONS
    assert isinstance(body["duration"], float)
    assert isinstance(body["cost"], float)


def test_gunicorn_predicts_a_list_of_rides(server_url):
    response = requests.post(f"{server_url}/predict", json=[RIDE] * 100, timeout=5)

    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 100


def test_gunicorn_answers_concurrent_clients_identically(server_url):
    def post(_: int) -> float:
        return requests.post(f"{server_url}/predict", json=RIDE, timeout=10).json()["duration"]

    with ThreadPoolExecutor(8) as pool:
        durations = set(pool.map(post, range(32)))

    assert len(durations) == 1


def test_gunicorn_rejects_a_body_over_the_default_limit_with_413(server_url):
    body = b"[" + b",".join([RIDE_JSON] * 20_000) + b"]"

    response = requests.post(
        f"{server_url}/predict", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )

    assert response.status_code == 413
    assert "error" in response.json()


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """The body as an iterator, which requests sends chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_within_the_limit_is_read_whole(server_url):
    body = b"[" + b",".join([RIDE_JSON] * 1000) + b"]"

    response = requests.post(
        f"{server_url}/predict", data=chunks(body), headers={"Content-Type": "application/json"}, timeout=10
    )

    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1000


def test_a_chunked_body_over_the_limit_is_413_not_cut_at_the_limit(server_url):
    valid_prefix = (b"[" + RIDE_JSON + b"]").ljust(LIMIT)  # valid JSON of exactly the limit's length

    response = requests.post(
        f"{server_url}/predict",
        data=chunks(valid_prefix + b"garbage"),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert response.status_code == 413
    assert response.json() == {"error": f"body larger than {LIMIT} bytes"}


def test_deep_nesting_is_a_400_and_leaves_no_traceback_in_the_log(server):
    response = requests.post(
        f"{server.url}/predict", data="[" * 100_000, headers={"Content-Type": "application/json"}, timeout=10
    )

    assert response.status_code == 400
    assert "Traceback" not in server.log_text()


@contextmanager
def trickling_clients(url: str, count: int, start: bytes) -> Iterator[None]:
    """``count`` connections that send ``start``, then one more byte a second, and never finish their request."""
    address = urlsplit(url)
    stop = threading.Event()
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection((address.hostname, address.port), timeout=5))
            sock.sendall(start)
            sockets.append(sock)

        def trickle() -> None:
            while not stop.wait(1):
                for sock in sockets:
                    sock.sendall(b" ")

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)


SLOW_HEADERS = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow:"
SLOW_BODY = (
    b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n["
)


@pytest.mark.parametrize("start", [SLOW_HEADERS, SLOW_BODY], ids=["headers", "body"])
def test_eight_clients_trickling_a_byte_a_second_leave_other_requests_answered(server_url, start):
    with trickling_clients(server_url, 8, start):
        statuses = [requests.post(f"{server_url}/predict", json=RIDE, timeout=5).status_code for _ in range(20)]

    assert statuses == [200] * 20


def test_a_hundred_clients_trickling_their_headers_hold_no_worker(server_url):
    # Past the 2 x 16 threads a gthread server had: a waiting connection costs a greenlet, not a thread.
    with trickling_clients(server_url, 100, SLOW_HEADERS):
        statuses = [requests.post(f"{server_url}/predict", json=RIDE, timeout=5).status_code for _ in range(20)]

    assert statuses == [200] * 20


def test_a_client_that_trickles_its_headers_is_dropped_after_keepalive_seconds(server_url):
    address = urlsplit(server_url)
    dropped_after = None
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(SLOW_HEADERS)
        started = time.monotonic()
        try:
            while time.monotonic() - started < 8:
                time.sleep(0.5)
                sock.sendall(b" ")
        except OSError:  # a broken pipe or a reset: the server closed the connection
            dropped_after = time.monotonic() - started

    assert dropped_after is not None
    assert dropped_after < 5  # gunicorn.conf.py's keepalive is 2 s; the next send or two notice


def test_the_start_up_log_says_where_the_server_listens_and_no_line_without_an_address(server):
    log = server.log_text()
    assert "a socket per worker (reuse_port)" in log
    assert "Listening at:  (" not in log


def test_a_server_stopped_by_sigterm_answers_then_exits_with_no_traceback_in_its_log(
    mlflow_model_dir, tmp_path_factory
):
    # One worker, so that its answer proves it is up: a worker still booting when SIGTERM
    # comes is killed after gunicorn's graceful timeout instead of exiting.
    with _gunicorn(mlflow_model_dir, tmp_path_factory, WEB_CONCURRENCY="1") as server:
        assert requests.post(f"{server.url}/predict", json=RIDE, timeout=5).status_code == 200
    # Leaving the block sent SIGTERM and waited for the master, which waits for its worker.

    log = server.log_text()
    assert "Worker exiting" in log
    assert "Traceback" not in log
    assert "Exception ignored" not in log


@pytest.fixture(scope="module")
def impatient_server(mlflow_model_dir, tmp_path_factory) -> Iterator[Server]:
    """One worker, which waits 2 s for more of a request body (WEB_BODY_TIMEOUT) rather than 30."""
    with _gunicorn(mlflow_model_dir, tmp_path_factory, WEB_CONCURRENCY="1", WEB_BODY_TIMEOUT="2") as running:
        yield running


def test_a_body_that_stops_arriving_is_a_400_after_web_body_timeout_and_the_connection_closes(impatient_server):
    address = urlsplit(impatient_server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(SLOW_BODY)  # promises 100 bytes, sends 1

        answer = b"".join(iter(lambda: sock.recv(4096), b""))  # until the server closes; 10 s would raise

    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(b'{"error":"the request body was not received in full"}')


def test_a_body_trickled_a_byte_at_a_time_is_a_400_once_web_body_timeout_has_passed_in_all(impatient_server):
    """Each byte comes well within the 2 s timeout; the whole body would take 50 s. The timeout is for the whole."""
    address = urlsplit(impatient_server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(SLOW_BODY)  # promises 100 bytes, sends 1
        sock.setblocking(False)
        answer = b""
        while not answer and time.monotonic() - started < 10:
            time.sleep(0.5)
            with suppress(OSError):  # the server may already have answered and closed
                sock.send(b" ")
            answer = _available(sock)
        took = time.monotonic() - started

    assert answer.startswith(b"HTTP/1.1 400 ")
    assert took < 4, f"answered after {took:.1f} s, the body timeout being 2 s"


def test_a_worker_serves_its_connections_in_turn_not_one_connections_queue_first(impatient_server):
    address = (urlsplit(impatient_server.url).hostname, urlsplit(impatient_server.url).port)
    request = (
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(RIDE_JSON), RIDE_JSON)
    )
    with socket.create_connection(address, timeout=10) as busy, socket.create_connection(address, timeout=10) as other:
        busy.sendall(request * 200)  # pipelined: the worker never waits for this connection's next request
        first_byte = busy.recv(1)  # the worker is on it
        other.sendall(request)

        assert other.recv(4096).startswith(b"HTTP/1.1 200 ")
        busy.setblocking(False)
        answered_before = (first_byte + b"".join(iter(lambda: _available(busy), b""))).count(b"HTTP/1.1 200 ")

    assert answered_before < 100  # without gunicorn.conf.py's post_request, all 200 came first


def _available(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


def test_each_worker_holds_web_worker_connections_connections_at_once(mlflow_model_dir):
    """gevent's default (1000) is not left to chance: the setting is the ceiling the README sizes."""
    printed = subprocess.run(
        [GUNICORN, "--print-config", "model_service.web:app_from_env()"],
        env={**os.environ, "MODEL_URIS": str(mlflow_model_dir), "WEB_WORKER_CONNECTIONS": "77"},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    settings = {
        name.strip(): value.strip() for name, _, value in (line.partition("=") for line in printed.stdout.splitlines())
    }
    assert settings["worker_connections"] == "77"
