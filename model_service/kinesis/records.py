"""The records the Lambda path handles: one read from a stream, and one to put on a stream."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

MAX_RECORD_BYTES = 1024 * 1024
"""Kinesis' limit on one record: its data and its partition key (UTF-8) together."""


def record_size(data: bytes, partition_key: str) -> int:
    return len(data) + len(partition_key.encode())


# Both classes are built once per record of every batch: plain slotted dataclasses,
# not frozen ones, which take about 4x as long to build.


@dataclass(slots=True)
class SourceRecord:
    """Where a record came from: enough to checkpoint it, dead-letter it and de-duplicate its output."""

    stream_name: str
    shard_id: str
    sequence_number: str
    partition_key: str
    data: str
    """The record's payload, base64 as Lambda delivers it."""
    approximate_arrival_timestamp: float | None = None

    @property
    def record_id(self) -> str:
        """``<stream>:<shard>:<sequence number>``: where the record is, the same on every retry and replay."""
        return f"{self.stream_name}:{self.shard_id}:{self.sequence_number}"

    def event_id(self, consumer: str) -> str:
        """The id of what ``consumer`` publishes for this record: one per (record, consumer), stable across retries.

        Several consumers read one stream and may publish onto one stream (the
        duration and cost functions onto the predictions stream), so the
        record's place alone would give their events one id.
        """
        return f"{self.stream_name}:{self.shard_id}:{self.sequence_number}/{consumer}"  # record_id's, inlined

    @classmethod
    def from_kinesis(cls, record: KinesisStreamRecord) -> SourceRecord:
        # Read the raw dict rather than the data class's properties: this runs for
        # every record of every batch, and the properties cost several times more.
        raw = record.raw_event
        payload = raw["kinesis"]
        return cls(
            stream_name=raw["eventSourceARN"].rpartition("/")[2],
            shard_id=raw["eventID"].partition(":")[0],
            sequence_number=payload["sequenceNumber"],
            partition_key=payload["partitionKey"],
            data=payload["data"],
            approximate_arrival_timestamp=payload.get("approximateArrivalTimestamp"),
        )


Event = TypeVar("Event", bound=Mapping[str, object])


_ENCODER = json.JSONEncoder(separators=(",", ":"))
"""Made once: ``json.dumps`` with any option builds a new encoder per call, a third of an event's encoding time."""


def encode_event(event: Mapping[str, object]) -> bytes:
    """An event as the bytes put on a stream: compact, ASCII-only JSON."""
    return _ENCODER.encode(event).encode()


@dataclass(slots=True)
class OutboundRecord(Generic[Event]):
    """An event to put on a stream, its partition key, and the input record it answers for.

    Output events and dead letters alike; the event is encoded only when it is
    published, so TEST_RUN returns it without paying for JSON twice.
    """

    event: Event
    partition_key: str
    source: SourceRecord

    def payload(self) -> bytes:
        return encode_event(self.event)
