"""An HTTP proxy in front of a Kinesis endpoint that throttles every PutRecords entry while told to.

One function's Kinesis calls go through it (``AWS_ENDPOINT_URL_KINESIS``, the
AWS SDKs' per-service endpoint), so one consumer can be throttled while the
others write to the real endpoint. Throttled calls are answered as Kinesis
answers them: HTTP 200, every entry failed with
ProvisionedThroughputExceededException. Everything else is forwarded as it is.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

PUT_RECORDS = "Kinesis_20131202.PutRecords"


class ThrottlingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlparse(upstream)
        self.throttled = threading.Event()
        self.refused_entries = 0
        self.forwarded_calls = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.throttled.is_set() and self.headers.get("X-Amz-Target") == PUT_RECORDS:
                    self._throttle(len(json.loads(body)["Records"]))
                else:
                    self._forward(body)

            def _throttle(self, entries: int) -> None:
                with proxy._lock:
                    proxy.refused_entries += entries
                failed = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}
                self._answer(200, {"FailedRecordCount": entries, "Records": [failed] * entries})

            def _forward(self, body: bytes) -> None:
                with proxy._lock:
                    proxy.forwarded_calls += 1
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
                    upstream.request("POST", self.path, body, headers)
                    response = upstream.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    for name, value in response.getheaders():
                        if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    upstream.close()

            def _answer(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads the counters, not a request log."""

        return Handler

    @contextmanager
    def running(self) -> Iterator[ThrottlingProxy]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
