"""Endpoints that give no answer, for the tests of what the tools say when AWS cannot be reached.

No mock is involved: botocore really connects to a port nothing listens on
(connection refused), or to one that accepts and never answers (the timeouts).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from botocore.exceptions import EndpointConnectionError

from local_stack.server import free_port


def closed_port() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens: every connection is refused."""
    return f"http://127.0.0.1:{free_port()}"


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` that takes connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def aws_at(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point boto3 at ``endpoint`` with fake credentials, so no call can reach a real account."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def refused(endpoint: str) -> EndpointConnectionError:
    """The error botocore raises when ``endpoint`` refuses the connection (as a stopped LocalStack does)."""
    return EndpointConnectionError(
        endpoint_url=f"{endpoint}/", error=ConnectionRefusedError("[Errno 111] Connection refused")
    )
