"""What went wrong between a tool and AWS, said in one line: an endpoint out of reach, a stream missing or lost.

The tools' commands raise these (``ServiceError``s), so ``python -m stream_tools``
prints ``error: <message>`` and exits 2 instead of a traceback:

- ``cannot reach Kinesis at http://127.0.0.1:4566 (connection refused)``
- ``cannot tail the stream ride_predictions (no such stream at http://127.0.0.1:4566)``
- ``lost the stream ride_predictions (connection refused)``
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from model_service.errors import ServiceError
from model_service.kinesis.publish import UNREACHABLE_ERRORS, connection_reason, endpoint_of


class CannotReach(ServiceError, ConnectionError):
    """An endpoint that gave no answer at all: refused, no such host, or silent until the timeouts."""

    def __init__(self, service: str, endpoint: str, reason: str) -> None:
        self.service, self.endpoint, self.reason = service, endpoint, reason
        super().__init__(f"cannot reach {service} at {endpoint} ({reason})")


class CannotTail(ServiceError, RuntimeError):
    """A stream that cannot be read from the start: missing, or refused."""

    def __init__(self, stream_name: str, reason: str) -> None:
        self.stream_name, self.reason = stream_name, reason
        super().__init__(f"cannot tail the stream {stream_name} ({reason})")


class StreamLost(ServiceError, RuntimeError):
    """A stream that was being read and no longer can be: deleted, or its endpoint gone."""

    def __init__(self, stream_name: str, reason: str) -> None:
        self.stream_name, self.reason = stream_name, reason
        super().__init__(f"lost the stream {stream_name} ({reason})")


def unreachable(exc: BaseException, service: str = "AWS") -> CannotReach:
    """The CannotReach that a connection error of botocore's (one of UNREACHABLE_ERRORS) means."""
    endpoint = str(getattr(exc, "kwargs", {}).get("endpoint_url") or "its endpoint").rstrip("/")
    return CannotReach(service, endpoint, connection_reason(exc))


def check_stream(client: Any, stream_name: str) -> None:
    """Raise CannotReach or CannotTail unless ``stream_name`` can be read (its shards listed) through ``client``."""
    try:
        client.list_shards(StreamName=stream_name)
    except UNREACHABLE_ERRORS as exc:
        raise CannotReach("Kinesis", endpoint_of(client), connection_reason(exc)) from None
    except ClientError as exc:
        code, message = _error(exc)
        missing = code == "ResourceNotFoundException"
        raise CannotTail(stream_name, f"no such stream at {endpoint_of(client)}" if missing else message) from None


def lost(exc: BotoCoreError | ClientError, client: Any, stream_name: str) -> StreamLost:
    """The StreamLost an error met while reading ``stream_name`` means, with the reason in a few words."""
    if isinstance(exc, UNREACHABLE_ERRORS):
        return StreamLost(stream_name, f"{connection_reason(exc)} at {endpoint_of(client)}")
    if isinstance(exc, ClientError):
        code, message = _error(exc)
        if code == "ResourceNotFoundException":
            return StreamLost(stream_name, f"it no longer exists at {endpoint_of(client)}")
        return StreamLost(stream_name, message)
    return StreamLost(stream_name, str(exc))


def _error(exc: ClientError) -> tuple[str, str]:
    """The error's code, and ``code: message`` (the message's first line) to show."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", "")).strip().splitlines()
    return code, f"{code}: {message[0]}" if message else code
