"""Turn one Kinesis record into a validated ride event, or into the reason it is not one.

Decoding never raises anything but RejectedRecord, so one bad record can be set
aside (dead-lettered) while the rest of its batch goes on.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from pydantic import TypeAdapter

from model_service.errors import InvalidJson, RejectedRecord, SchemaViolation
from model_service.schema import RIDE_EVENT, RideEvent, Shape, validate_json


@dataclass(slots=True)  # not frozen: a frozen dataclass is 4x slower to build, and one is built per record
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
    def event_id(self) -> str:
        """Stable across Lambda retries, so consumers can drop a repeated event."""
        return f"{self.stream_name}:{self.shard_id}:{self.sequence_number}"

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


def decode_text(data_b64: str) -> str:
    """base64 -> UTF-8 text, each failure named."""
    try:
        raw = base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise RejectedRecord("decode", f"data is not valid base64 ({exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedRecord("decode", f"data is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def decode_as(schema: TypeAdapter[Shape], data_b64: str) -> Shape:
    """A record's payload parsed and validated as ``schema``, or RejectedRecord saying which field and why."""
    text = decode_text(data_b64)
    try:
        return validate_json(schema, text)
    except InvalidJson as exc:
        raise RejectedRecord("decode", f"data is not valid JSON ({exc})") from None
    except SchemaViolation as exc:
        raise RejectedRecord("validate", str(exc), exc.errors) from None


def decode_ride_event(data_b64: str) -> RideEvent:
    return decode_as(RIDE_EVENT, data_b64)
