"""Putting rides on a stream as the producer does, and reading back what the functions put (moto or LocalStack)."""

from __future__ import annotations

import json
from typing import Any

from local_stack.aws import CREDENTIALS
from model_service.config import Settings
from model_service.kinesis.publish import KinesisPublisher, kinesis_client
from model_service.kinesis.read import StreamTail
from stream_tools.producer import RideRecord, produce


def put(endpoint: str, stream: str, payloads: list[bytes]) -> None:
    """Put records at ``endpoint`` as the producer does: entries Kinesis refuses are sent again."""
    client = kinesis_client(Settings(), endpoint_url=endpoint, **CREDENTIALS)
    records = [RideRecord(f"record-{i}", payload) for i, payload in enumerate(payloads)]
    report = produce(KinesisPublisher(client, stream), records, retry_seconds=60)
    assert report.failed == 0, f"{report.failed} records could not be put on {stream}"


def read_stream(client: Any, stream_name: str) -> list[bytes]:
    """Every record on every shard of a stream, from the start."""
    return StreamTail(client, stream_name).poll()


def read_events(client: Any, stream_name: str) -> list[dict[str, Any]]:
    return [json.loads(data) for data in read_stream(client, stream_name)]
