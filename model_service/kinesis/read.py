"""Read a Kinesis stream: every record on every shard, from a chosen position, as it arrives.

What ``python -m stream_tools tail`` prints, what ``compare`` joins, what the
demo shows and what the integration tests read their results with.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any


class StreamTail:
    """Keeps one shard iterator per shard; each ``poll()`` returns the records that arrived since the last.

    ``position`` is where each shard is read from: ``TRIM_HORIZON`` (all it
    keeps), ``LATEST`` (what arrives from now), or ``since``, a time.
    """

    def __init__(
        self, client: Any, stream_name: str, position: str = "TRIM_HORIZON", since: datetime | None = None
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.position = "AT_TIMESTAMP" if since is not None else position
        self.since = since
        self._iterators: dict[str, str | None] = {}

    def _refresh_shards(self) -> None:
        at = {"Timestamp": self.since} if self.since is not None else {}
        for shard in self.client.list_shards(StreamName=self.stream_name)["Shards"]:
            if shard["ShardId"] not in self._iterators:
                self._iterators[shard["ShardId"]] = self.client.get_shard_iterator(
                    StreamName=self.stream_name, ShardId=shard["ShardId"], ShardIteratorType=self.position, **at
                )["ShardIterator"]

    def poll(self) -> list[bytes]:
        self._refresh_shards()
        data: list[bytes] = []
        for shard_id, iterator in self._iterators.items():
            while iterator:
                response = self.client.get_records(ShardIterator=iterator, Limit=10_000)
                data.extend(record["Data"] for record in response["Records"])
                iterator = response.get("NextShardIterator")
                if not response["Records"] or not response.get("MillisBehindLatest"):
                    break
            self._iterators[shard_id] = iterator
        return data

    def events(self) -> list[dict[str, Any]]:
        """``poll()`` decoded as JSON events (a record that is not JSON comes back as ``{"raw": ...}``)."""
        return [_as_event(data) for data in self.poll()]

    def follow(self, interval: float = 0.5, stop: Callable[[], bool] = lambda: False) -> Iterator[dict[str, Any]]:
        """Yield events as they arrive until ``stop()`` is true."""
        while not stop():
            events = self.events()
            yield from events
            if not events:
                time.sleep(interval)


def _as_event(data: bytes) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError:
        return {"raw": data.decode("utf-8", "replace")}
    return event if isinstance(event, dict) else {"raw": event}


def reading_client() -> Any:
    """A Kinesis client for reading, with boto3's standard retries (a tool, not bound to a deadline).

    Timeouts of seconds, not botocore's 60: an endpoint that stops answering is
    noticed while someone still watches the tool.
    """
    import boto3
    from botocore.config import Config

    return boto3.client("kinesis", config=Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=10))


def read_all(client: Any, stream_name: str, since: datetime | None = None) -> list[dict[str, Any]]:
    """Every event ``stream_name`` keeps (from ``since``), or StreamUnavailable naming the stream."""
    from botocore.exceptions import ClientError

    from model_service.errors import StreamUnavailable

    try:
        return StreamTail(client, stream_name, since=since).events()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise StreamUnavailable(stream_name, error.get("Code", "Unknown"), error.get("Message", ""), "read") from None
