"""A real gunicorn on a free loopback port, for the tests that need one (the repo's, or the web image's files)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from local_stack.server import free_port

GUNICORN = Path(sys.executable).parent / "gunicorn"


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer {url}/health within {timeout} s:\n{log.read_text(errors='replace')}")


@contextmanager
def running_gunicorn(
    argv: list[str], cwd: Path, env: dict[str, str], log: Path, timeout: float = 60
) -> Iterator[Server]:
    """Start ``argv`` bound to a free 127.0.0.1 port (GUNICORN_CMD_ARGS), wait for /health, stop it after."""
    if not GUNICORN.exists():
        pytest.skip(f"{GUNICORN} is absent; run the tests with the project's .venv/bin/python")
    port = free_port()
    env = {**env, "GUNICORN_CMD_ARGS": f"--bind=127.0.0.1:{port}"}
    with log.open("w") as log_file:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, process, log, timeout)
        yield Server(url, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
