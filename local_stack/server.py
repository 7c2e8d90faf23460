"""Start and stop a Docker-free LocalStack (with working Lambda) for the integration tests.

LocalStack normally runs in a container and runs Lambda functions in more containers. Here it
runs as a plain process from its own Python 3.13 virtualenv (made by
``local_stack/install.sh``), with the ``local-process`` runtime executor that
runs each function as a local process on the project's interpreter (see
``local_stack/lambda_local_executor``).

Standard library only, so the project's Python 3.11 environment and pytest can import it.

    with server.start() as stack:
        boto3.client("kinesis", endpoint_url=stack.endpoint, ...)

Or by hand: ``python -m local_stack.server`` runs it until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCALSTACK_HOME = PROJECT_ROOT / ".localstack"
LOCALSTACK_PYTHON = LOCALSTACK_HOME / "venv" / "bin" / "python"
# Packages LocalStack would otherwise download on first use (the Kinesis engine): install.sh
# puts them here and every run links them in as its "static libs".
STATIC_LIBS = LOCALSTACK_HOME / "filesystem" / "usr" / "lib" / "localstack"
INSTALL_SCRIPT = PROJECT_ROOT / "local_stack" / "install.sh"

# What the project's template.yaml deploys (plus sts, which Lambda uses for its roles).
# Services load lazily, so unused ones cost nothing at start-up.
SERVICES = "kinesis,s3,lambda,sts,iam,kms,logs,cloudformation,sqs,sns,cloudwatch,scheduler"
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
# How long LocalStack gets for its clean-up once its gateway has closed (see LocalStack.stop).
CLEANUP_SECONDS = 1.5


class LocalStackError(RuntimeError):
    """LocalStack could not be started (its log tail is in the message)."""


class LocalStack:
    """A running LocalStack process; stop it with ``stop()`` or by leaving a ``with`` block."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path, filesystem_root: Path):
        self.process = process
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.filesystem_root = filesystem_root

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _wait_until_healthy(self, timeout: float) -> None:
        """Poll the health endpoint; fail early, with the log, if LocalStack exits instead."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            try:
                with _open(f"{self.endpoint}/_localstack/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise LocalStackError(
                    f"LocalStack was not healthy after {timeout:.0f} s. Log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.2)
        raise LocalStackError(
            f"LocalStack exited with status {self.process.returncode} during start-up. "
            f"Log {self.log_path}:\n{self.log_tail()}"
        )

    def set_config(self, variable: str, value: object) -> dict:
        """Change a LocalStack setting at run time, e.g. ``KINESIS_ERROR_PROBABILITY``.

        Needs ``ENABLE_CONFIG_UPDATES=1``, which ``start()`` sets.
        """
        body = json.dumps({"variable": variable, "value": value}).encode()
        request = urllib.request.Request(
            f"{self.endpoint}/_localstack/config",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with _open(request) as response:
            return json.load(response)

    def stop(self) -> None:
        """SIGTERM, a bounded wait, then SIGKILL; signals go to its whole process group.

        The group also holds what LocalStack started: the Kinesis engine (node) and the
        Lambda runtimes (each in a group of its own, which LocalStack stops on SIGTERM; they
        also exit by themselves when LocalStack is gone).
        """
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            self._wait_for_shutdown()
        _signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait()
        shutil.rmtree(self.filesystem_root, ignore_errors=True)

    def _wait_for_shutdown(self) -> None:
        """Wait for exit, but not through interpreter teardown.

        LocalStack closes its gateway within a second of SIGTERM and finishes its own clean-up
        about a second later, then spends several seconds garbage-collecting its heap before
        the process ends. Nothing is lost by killing it then: its state lives in this run's
        temporary root, which is deleted anyway.
        """
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        gateway_closed_at = None
        while self.process.poll() is None and time.monotonic() < deadline:
            if gateway_closed_at is None and not _accepting(self.port):
                gateway_closed_at = time.monotonic()
            if gateway_closed_at and time.monotonic() - gateway_closed_at > CLEANUP_SECONDS:
                return
            time.sleep(0.1)

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _open(request: urllib.request.Request | str, timeout: float = 10) -> Any:
    """urlopen without proxies: LocalStack is on loopback, whatever the environment says."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(request, timeout=timeout)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def free_port() -> int:
    """A port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepting(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _environment(port: int, filesystem_root: Path, extra_env: dict[str, str] | None) -> dict[str, str]:
    env = {
        **os.environ,
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "SERVICES": SERVICES,
        # No DNS server (it would need port 53), no analytics, no certificate download: the
        # machine reaches package registries only.
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        # /.dockerenv exists on some machines; without this LocalStack would believe it runs in
        # its container and write to /var/lib/localstack, /etc/localstack, ...
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(filesystem_root),
        # Lambda code is unzipped under the temp dir: keep it inside this run's root too.
        "TMPDIR": str(filesystem_root / "tmp"),
        "ENABLE_CONFIG_UPDATES": "1",
        "LAMBDA_RUNTIME_EXECUTOR": "local-process",
        # Importing a real model-serving handler takes longer than LocalStack's default 20 s
        # on a busy two-core machine.
        "LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT": "60",
        "LOCAL_LAMBDA_PROJECT_ROOT": str(PROJECT_ROOT),
    }
    env.update(extra_env or {})
    return env


def ensure_installed() -> None:
    """Run install.sh: a no-op in milliseconds once done, about a minute on a fresh machine."""
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise LocalStackError(f"{INSTALL_SCRIPT} failed with status {result.returncode}")


def start(
    extra_env: dict[str, str] | None = None,
    port: int = 4566,
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    log_path: Path | None = None,
) -> LocalStack:
    """Start LocalStack on ``127.0.0.1:port`` and return once its health endpoint answers.

    ``extra_env`` adds or overrides LocalStack settings and the executor's variables, e.g.
    ``{"LOCAL_LAMBDA_PYTHON": sys.executable}``. LocalStack's output goes to ``log_path``
    (default ``.localstack/localstack-<port>.log``), kept after ``stop()``. Installs LocalStack
    first if needed (see ``ensure_installed``). Raises ``LocalStackError`` if the port is taken,
    LocalStack cannot be installed, or it does not become healthy in time.
    """
    if _port_in_use(port):
        raise LocalStackError(
            f"Port {port} on 127.0.0.1 is already in use (another LocalStack?); stop it or pass another port"
        )
    ensure_installed()
    filesystem_root = Path(tempfile.mkdtemp(prefix="localstack-"))
    (filesystem_root / "tmp").mkdir()
    (filesystem_root / "usr" / "lib").mkdir(parents=True)
    (filesystem_root / "usr" / "lib" / "localstack").symlink_to(STATIC_LIBS)
    log_path = log_path or LOCALSTACK_HOME / f"localstack-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(LOCALSTACK_PYTHON), "-m", "localstack.runtime.main"],
            cwd=PROJECT_ROOT,
            env=_environment(port, filesystem_root, extra_env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = LocalStack(process, port, log_path, filesystem_root)
    try:
        stack._wait_until_healthy(startup_timeout)
    except BaseException:  # also Ctrl-C: never leave a half-started LocalStack behind
        stack.stop()
        raise
    return stack


def main() -> int:
    """Run LocalStack in the foreground for manual use until Ctrl-C (or SIGTERM)."""
    started = time.monotonic()
    try:
        stack = start()
    except LocalStackError as e:
        print(e, file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(
        f"LocalStack ready at {stack.endpoint} in {time.monotonic() - started:.1f} s "
        f"(log: {stack.log_path}). Ctrl-C stops it.",
        flush=True,
    )
    try:
        stack.process.wait()
        print(f"LocalStack exited with status {stack.process.returncode}:\n{stack.log_tail()}")
        return 1
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
