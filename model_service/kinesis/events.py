"""The shapes of the events this service publishes.

The prediction event keeps the MLOps Zoomcamp field names that existing
consumers read; ``event_id`` is added so they can drop the repeats that
at-least-once delivery allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from model_service.config import MODEL_NAME
from model_service.errors import RejectedRecord
from model_service.kinesis.decode import SourceRecord

MAX_RAW_DATA_CHARS = 512 * 1024
"""Raw payload kept in a dead letter; keeps the dead letter under Kinesis' 1 MiB record limit."""


@dataclass(slots=True)  # built once per record: not frozen, which would cost 4x
class OutboundRecord:
    """One record to put on a stream, tied to the input record it answers for."""

    data: bytes
    partition_key: str
    source: SourceRecord


def prediction_event(source: SourceRecord, ride_id: int | str, duration: float, version: str) -> dict[str, Any]:
    return {
        "model": MODEL_NAME,
        "version": version,
        "prediction": {"ride_duration": duration, "ride_id": ride_id},
        "event_id": source.event_id,
    }


def dead_letter_event(source: SourceRecord, rejection: RejectedRecord) -> dict[str, Any]:
    truncated = len(source.data) > MAX_RAW_DATA_CHARS
    return {
        "event_id": source.event_id,
        "stage": rejection.stage,
        "reason": rejection.reason,
        "errors": rejection.errors,
        "source": {
            "stream_name": source.stream_name,
            "shard_id": source.shard_id,
            "sequence_number": source.sequence_number,
            "partition_key": source.partition_key,
            "approximate_arrival_timestamp": source.approximate_arrival_timestamp,
        },
        "raw_data": source.data[:MAX_RAW_DATA_CHARS],
        "raw_data_truncated": truncated,
    }


def outbound(event: dict[str, Any], partition_key: str, source: SourceRecord) -> OutboundRecord:
    return OutboundRecord(json.dumps(event, separators=(",", ":")).encode(), partition_key, source)
