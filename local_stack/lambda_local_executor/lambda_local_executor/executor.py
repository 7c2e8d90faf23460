"""A LocalStack Lambda runtime executor that runs each function as a local Python process.

LocalStack's only built-in executor starts a Docker container per execution environment. This
machine (and CI) has no Docker engine, so functions would go to State=Failed. LocalStack loads
executors as plugins (entry-point group ``localstack.lambda.runtime_executor``, chosen with
``LAMBDA_RUNTIME_EXECUTOR``); this one starts ``runtime_client.py`` under the project's own
interpreter instead of a container. The client speaks the same HTTP protocol as LocalStack's
runtime-init binary, so LocalStack's invoke path, event source mappings, CloudWatch Logs
forwarding and error reporting all work unchanged.

Environment variables read (in the LocalStack process):

- ``LOCAL_LAMBDA_PROJECT_ROOT``: the project tree; default: LocalStack's working directory.
- ``LOCAL_LAMBDA_PYTHON``: interpreter that runs the functions; default
  ``<project root>/.venv/bin/python``.
- ``LOCAL_LAMBDA_IMAGE_CODE_ROOT``: where Image functions' code lives (their image is never
  pulled or built); default: the project root.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
from concurrent.futures import InvalidStateError
from datetime import UTC, datetime
from pathlib import Path

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from localstack.utils.net import get_free_tcp_port

LOG = logging.getLogger(__name__)

RUNTIME_CLIENT = Path(__file__).with_name("runtime_client.py")
# What an Image function runs when its ImageConfig has no Command (we cannot read the image's CMD).
DEFAULT_IMAGE_HANDLER = "lambda_function.lambda_handler"
# Seconds a runtime gets to exit on SIGTERM before it is killed.
STOP_GRACE_SECONDS = 2
# Variables of LocalStack's own process that must not reach a function: they would point the
# project's interpreter at LocalStack's packages. (AWS_* ones are not inherited either: the
# function gets its own credentials, region and endpoint from LocalStack.)
NOT_INHERITED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def project_root() -> Path:
    return Path(os.environ.get("LOCAL_LAMBDA_PROJECT_ROOT") or os.getcwd()).resolve()


def function_python() -> Path:
    configured = os.environ.get("LOCAL_LAMBDA_PYTHON")
    return Path(configured) if configured else project_root() / ".venv" / "bin" / "python"


def _error_payload(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class LocalProcessRuntimeExecutor(RuntimeExecutor):
    """One execution environment = one local process running ``runtime_client.py``.

    The process reports readiness and results to LocalStack's executor endpoint (reused as is).
    Two things the runtime-init binary normally does are done here, because a process cannot do
    them for itself: enforcing the function timeout (kill the process, report "Task timed out")
    and reporting a runtime that died mid-invocation (Runtime.ExitError). A killed or dead
    runtime is started afresh on the next invocation, as Lambda re-initialises a reset sandbox.
    """

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = ExecutorEndpoint(id, container_address="127.0.0.1")
        self.process: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        self.timeout_result: InvocationResult | None = None
        log_dir = Path(config.dirs.tmp) / "lambda-local-executor"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{function_version.id.function_name}-{id}.log"

    def start(self, env_vars: dict[str, str]) -> None:
        """Keep the environment for (re)launches, then launch the runtime.

        ``env_vars`` already holds what Lambda sets (the role's credentials, region, handler,
        log group, ...) and the function's own variables, which win. The defaults below matter
        only if LocalStack left them out: e.g. with ``LAMBDA_DISABLE_AWS_ENDPOINT_URL`` a
        function would call real AWS, which it cannot reach from here.
        """
        inherited = {
            key: value for key, value in os.environ.items() if not key.startswith("AWS_") and key not in NOT_INHERITED
        }
        self.env = {**inherited, **{key: str(value) for key, value in env_vars.items()}}
        gateway_port = config.GATEWAY_LISTEN[0].port
        self.env.setdefault("AWS_ENDPOINT_URL", f"http://127.0.0.1:{gateway_port}")
        self.env.setdefault("AWS_ACCESS_KEY_ID", "test")
        self.env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        self.env.setdefault("AWS_REGION", self.function_version.id.region)
        self.env.setdefault("AWS_DEFAULT_REGION", self.function_version.id.region)
        self.env["PYTHONUNBUFFERED"] = "1"  # output reaches the log file as it is written
        self._launch()

    def _code_and_handler(self) -> tuple[Path, str]:
        """Where the function's code is and which ``module.function`` to run."""
        config_ = self.function_version.config
        if config_.package_type == PackageType.Image:
            root = os.environ.get("LOCAL_LAMBDA_IMAGE_CODE_ROOT")
            command = config_.image_config.command if config_.image_config else None
            return (Path(root) if root else project_root()), (command[0] if command else DEFAULT_IMAGE_HANDLER)
        if not (config_.runtime or "").startswith("python"):
            raise LambdaRuntimeException(f"local-process executor runs Python functions only, not {config_.runtime}")
        return Path(config_.code.get_unzipped_code_location()), config_.handler

    def _launch(self) -> None:
        """Start the runtime process and block until it reports ready (or its init error)."""
        python = function_python()
        if not python.exists():
            raise LambdaRuntimeException(f"Function interpreter {python} does not exist; set LOCAL_LAMBDA_PYTHON")
        code_dir, handler = self._code_and_handler()
        self.executor_endpoint.container_port = get_free_tcp_port()
        self.executor_endpoint.start()
        env = {
            **self.env,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LOCAL_LAMBDA_INVOKE_PORT": str(self.executor_endpoint.container_port),
        }
        self.timeout_result = None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(python), str(RUNTIME_CLIENT)],
                cwd=code_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() also ends its children
            )
        threading.Thread(target=self._watch, args=(self.process,), name=f"lambda-local-{self.id}", daemon=True).start()
        self.executor_endpoint.wait_for_startup()

    def _watch(self, process: subprocess.Popen) -> None:
        """Turn an unexpected exit into an error instead of LocalStack waiting for minutes."""
        code = process.wait()
        if process is not self.process:
            return
        endpoint = self.executor_endpoint
        try:
            if endpoint.startup_future and not endpoint.startup_future.done():
                message = f"Runtime exited during init with status {code}: {self.get_logs()[-2000:]}"
                endpoint.startup_future.set_exception(
                    StatusErrorException(message, _error_payload(message, "Runtime.ExitError"))
                )
            elif endpoint.invocation_future and not endpoint.invocation_future.done():
                result = self.timeout_result or InvocationResult(
                    request_id="",
                    payload=_error_payload(f"Runtime exited with error: exit status {code}", "Runtime.ExitError"),
                    is_error=True,
                    logs=f"Runtime exited with error: exit status {code}\n",
                )
                endpoint.invocation_future.set_result(result)
        except InvalidStateError:
            pass  # the runtime answered just before it exited, or the endpoint was shut down

    def _time_out(self, request_id: str) -> None:
        """Called by a timer: Lambda resets a sandbox whose invocation outlives its timeout."""
        timeout = self.function_version.config.timeout
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = f"{now} {request_id} Task timed out after {timeout:.2f} seconds"
        self.timeout_result = InvocationResult(
            request_id=request_id,
            payload=_error_payload(message, "Sandbox.Timedout"),
            is_error=True,
            logs=message + "\n",
        )
        self._kill(signal.SIGKILL)

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        if self.process is None or self.process.poll() is not None:
            self._launch()
        timer = threading.Timer(self.function_version.config.timeout, self._time_out, args=(payload["invoke-id"],))
        timer.start()
        try:
            return self.executor_endpoint.invoke(payload)
        finally:
            timer.cancel()

    def _kill(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self._kill(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._kill(signal.SIGKILL)
        # KeyError: already shut down (LocalStack may stop an environment twice) or never started.
        with contextlib.suppress(KeyError):
            self.executor_endpoint.shutdown()

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://127.0.0.1:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    def get_logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "Runtime process was not started"

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        """Unzip Zip functions' code. Image functions need nothing: their image is never used."""
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        python = function_python()
        if not python.exists():
            LOG.warning("Lambda functions cannot run: interpreter %s does not exist", python)
            return False
        return True


class LocalProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """Registered under ``localstack.lambda.runtime_executor`` as ``local-process``."""

    name = "local-process"

    def load(self, *args, **kwargs) -> type[RuntimeExecutor]:
        return LocalProcessRuntimeExecutor
