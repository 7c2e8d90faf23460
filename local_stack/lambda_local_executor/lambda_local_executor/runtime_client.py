"""Runs one Lambda function in this process, speaking LocalStack's runtime-init protocol.

Started by ``executor.py`` under the *project's* interpreter (not LocalStack's), so it uses the
standard library only and runs as a plain script. The protocol is the one LocalStack's
runtime-init binary speaks inside a Lambda container:

- LocalStack POSTs ``{"invoke-id", "invoked-function-arn", "payload", "trace-id"}`` to
  ``http://127.0.0.1:$LOCAL_LAMBDA_INVOKE_PORT/invoke`` and expects an immediate 200;
- the result goes back to ``$LOCALSTACK_RUNTIME_ENDPOINT/invocations/<id>/response`` (or
  ``/error``), preceded by ``/invocations/<id>/logs`` with ``{"logs": ...}``, which LocalStack
  stores in CloudWatch Logs;
- after importing the handler the process reports ``/status/$LOCALSTACK_RUNTIME_ID/ready``, or
  ``/status/.../error`` with the error, which LocalStack returns as the invocation's
  FunctionError (so an event source mapping retries the batch).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import queue
import select
import sys
import threading
import time
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# LocalStack is local: never send its callbacks through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    _HTTP.open(request, timeout=30).close()


class OutputCapture:
    """Collects everything written to file descriptors 1 and 2, as Lambda's log collector does.

    Capturing at the descriptor level (not ``sys.stdout``) also catches logging handlers created
    before the handler ran and output of child processes. Output is copied to the original
    stdout (the executor's log file) as it arrives. Reads only happen under a lock, so
    ``collect()`` can drain the pipe itself and be sure it has everything written so far.
    """

    def __init__(self) -> None:
        # os.dup/os.pipe descriptors are not inherited: the function's child processes get
        # only 1 and 2, i.e. the pipe.
        self._tee = os.dup(1)
        self._read_fd, write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._buffer = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, name="output-capture", daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self._buffer += chunk
            os.write(self._tee, chunk)

    def _pump(self) -> None:
        """Keep the pipe from filling up (which would block the function) between collects."""
        while True:
            select.select([self._read_fd], [], [])
            with self._lock:
                self._drain()

    def collect(self) -> str:
        """Return and forget everything written since the last call."""
        sys.stdout.flush()
        sys.stderr.flush()
        with self._lock:
            self._drain()
            text = self._buffer.decode(errors="replace")
            self._buffer.clear()
        return text


class RequestIdFilter(logging.Filter):
    """Adds the current request id to log records, for the Lambda-style log format."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def install_lambda_logging(request_ids: RequestIdFilter) -> None:
    """Give the root logger the handler the AWS Python runtime installs.

    Besides the familiar ``[LEVEL] time request-id message`` lines, this makes a function's own
    ``logging.basicConfig()`` a no-op here exactly as it is on AWS.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.formatter.converter = time.gmtime
    handler.addFilter(request_ids)
    logging.getLogger().addHandler(handler)


class LambdaContext:
    """The ``context`` argument, with the attributes of the AWS Python runtime's context.

    As there, ``memory_limit_in_mb`` is a string (it comes from an environment variable).
    """

    def __init__(self, request_id: str, invoked_function_arn: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def error_payload(exc: BaseException, error_type: str | None = None, message: str | None = None) -> dict:
    """The error body Lambda returns: errorMessage, errorType and the stack as a list of lines."""
    return {
        "errorMessage": str(exc) if message is None else message,
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


class LambdaError(Exception):
    """A failure that Lambda reports with its own error type and message."""

    def __init__(self, cause: BaseException, error_type: str | None = None, message: str | None = None):
        super().__init__(message or str(cause))
        self.payload = error_payload(cause, error_type, message)


def load_handler(handler: str):
    """Import ``module.function`` the way the AWS Python runtime does, with its error types."""
    module_name, _, function_name = handler.rpartition(".")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise LambdaError(e, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}") from e
    except SyntaxError as e:
        raise LambdaError(e, "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}") from e
    except Exception as e:
        raise LambdaError(e) from e
    try:
        return getattr(module, function_name)
    except AttributeError as e:
        raise LambdaError(
            e, "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from e


def peak_memory_mb() -> int:
    """Peak RSS of this process. Not getrusage's ru_maxrss: Linux carries that over from the
    parent across fork+exec, so it would report LocalStack's memory."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return 0


def log_error(payload: dict) -> None:
    """Put a failure into the function's logs, as the AWS runtime does."""
    print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}", file=sys.stderr)
    traceback.print_exc()


def invoke_server(port: int, invocations: queue.Queue) -> ThreadingHTTPServer:
    """Accept LocalStack's invoke requests; they run on the main thread, one at a time."""

    class InvokeHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            invocations.put(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, format: str, *args) -> None:
            pass  # keep request lines out of the function's logs

    server = ThreadingHTTPServer(("127.0.0.1", port), InvokeHandler)
    threading.Thread(target=server.serve_forever, name="invoke-server", daemon=True).start()
    return server


class Runtime:
    """Runs invocations of one loaded handler and reports them to LocalStack."""

    def __init__(self, handler, capture: OutputCapture, request_ids: RequestIdFilter) -> None:
        self.handler = handler
        self.capture = capture
        self.request_ids = request_ids
        self.endpoint = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"]

    def call_handler(self, invoke: dict, context: LambdaContext) -> tuple[bytes, str]:
        """Return the body to report and whether it goes to ``response`` or ``error``."""
        try:
            result = self.handler(json.loads(invoke["payload"] or "{}"), context)
            try:
                return json.dumps(result).encode(), "response"
            except (TypeError, ValueError) as e:
                raise LambdaError(e, "Runtime.MarshalError", f"Unable to marshal response: {e}") from e
        except Exception as e:  # noqa: BLE001 -- any failure of the function is its error result
            payload = e.payload if isinstance(e, LambdaError) else error_payload(e)
            log_error(payload)
            return json.dumps({**payload, "requestId": context.aws_request_id}).encode(), "error"

    def invoke(self, invoke: dict) -> None:
        request_id = invoke["invoke-id"]
        self.request_ids.request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = invoke.get("trace-id") or ""
        started = time.time()
        deadline = started + int(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
        context = LambdaContext(request_id, invoke["invoked-function-arn"], deadline)
        print(f"START RequestId: {request_id} Version: {context.function_version}")
        body, outcome = self.call_handler(invoke, context)
        duration_ms = (time.time() - started) * 1000
        print(f"END RequestId: {request_id}")
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Memory Size: {context.memory_limit_in_mb} MB\tMax Memory Used: {peak_memory_mb()} MB"
        )
        # LocalStack attaches the logs it holds when the result arrives: logs must go first.
        post(f"{self.endpoint}/invocations/{request_id}/logs", json.dumps({"logs": self.capture.collect()}).encode())
        post(f"{self.endpoint}/invocations/{request_id}/{outcome}", body)


def exit_with_parent() -> None:
    """Exit when LocalStack dies, even by SIGKILL, instead of lingering as an orphan."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> int:
    status_url = f"{os.environ['LOCALSTACK_RUNTIME_ENDPOINT']}/status/{os.environ['LOCALSTACK_RUNTIME_ID']}"
    # Like /var/task on Lambda: the function's code comes first; this script's folder (which
    # belongs to LocalStack's environment) must not be importable.
    sys.path[0] = os.environ["LAMBDA_TASK_ROOT"]
    exit_with_parent()
    capture = OutputCapture()
    request_ids = RequestIdFilter()
    install_lambda_logging(request_ids)
    invocations: queue.Queue = queue.Queue()
    invoke_server(int(os.environ["LOCAL_LAMBDA_INVOKE_PORT"]), invocations)
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except LambdaError as e:
        log_error(e.payload)
        capture.collect()  # copies the output to the log file before the process exits
        post(f"{status_url}/error", json.dumps(e.payload).encode())
        return 1
    post(f"{status_url}/ready", b"{}")
    runtime = Runtime(handler, capture, request_ids)
    while True:
        runtime.invoke(invocations.get())


if __name__ == "__main__":
    sys.exit(main())
