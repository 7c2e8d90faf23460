"""Reading what the functions put on moto's streams."""

from __future__ import annotations

import json
from typing import Any

from stream_tools.tail import StreamTail


def read_stream(client: Any, stream_name: str) -> list[bytes]:
    """Every record on every shard of a stream, from the start."""
    return StreamTail(client, stream_name).poll()


def read_events(client: Any, stream_name: str) -> list[dict[str, Any]]:
    return [json.loads(data) for data in read_stream(client, stream_name)]
