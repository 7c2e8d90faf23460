"""The events the stream functions publish, and how each is built from the input record it answers for.

A dead letter is built to fit one Kinesis record whatever the input: the
quoted values in its reasons are capped, and the raw payload is cut by its
encoded size, so a poison record can never make a dead letter that cannot be
put (and so block its shard).
"""

from __future__ import annotations

import json
from typing import NotRequired, TypedDict, cast

from model_service.errors import FieldError, RejectedRecord, Stage
from model_service.kinesis.records import MAX_RECORD_BYTES, OutboundRecord, SourceRecord, encode_event
from model_service.model.target import Target
from model_service.schema import Prediction, PredictionEvent

__all__ = ["DeadLetterEvent", "DecisionEvent", "PredictionEvent", "dead_letter_record", "prediction_record"]

MAX_REASON_CHARS = 1000
"""A reason longer than this is cut; the schema already quotes bad values in at most a few hundred characters."""
MAX_ERRORS = 20


class DeadLetterSource(TypedDict):
    stream_name: str
    shard_id: str
    sequence_number: str
    partition_key: str
    approximate_arrival_timestamp: float | None


class DeadLetterEvent(TypedDict):
    """A record that can never be processed: where it came from, who refused it, why, and its payload (cut to fit)."""

    event_id: str
    consumer: str
    """The function that refused it (``duration``, ``cost``, ``decision``): each may refuse the same record."""
    stage: Stage
    reason: str
    errors: list[FieldError]
    source: DeadLetterSource
    raw_data: str
    """The payload as it arrived (base64), or its first part when ``raw_data_truncated``."""
    raw_data_truncated: bool


class DecisionModel(TypedDict):
    name: str
    version: str


class DecisionEvent(TypedDict):
    """One prediction decided; the prediction and threshold fields are those of its model's rule, if it has one."""

    event_id: str
    """The prediction's event_id + ``/decision``: the same for every delivery of the same prediction."""
    prediction_event_id: str
    ride_id: int | str
    decision: str
    """The rule's flag (``long_ride``, ``costly_ride``), ``normal`` below its threshold, or ``no_rule``."""
    model: DecisionModel
    predicted_duration: NotRequired[float]
    threshold_minutes: NotRequired[float]
    predicted_cost: NotRequired[float]
    threshold_usd: NotRequired[float]


def prediction_record(
    source: SourceRecord, ride_id: int | str, value: float, target: Target, version: str, consumer: str
) -> OutboundRecord[PredictionEvent]:
    """The course's event, for any target: ``{"model", "version", "prediction": {<field>: value, "ride_id"}}``."""
    event: PredictionEvent = {
        "model": target.event_model,
        "version": version,
        # The field is the model's (ride_duration, ride_cost): a key no TypedDict can spell in advance.
        "prediction": cast(Prediction, {target.event_field: value, "ride_id": ride_id}),
        "event_id": source.event_id(consumer),
    }
    return OutboundRecord(event, str(ride_id), source)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _encoded_length(text: str) -> int:
    return len(json.dumps(text)) - 2


def fit_json_string(text: str, budget: int) -> tuple[str, bool]:
    """The longest prefix of ``text`` whose JSON encoding takes at most ``budget`` bytes, and whether it was cut.

    JSON escaping grows text up to 6x (``\\uXXXX`` per UTF-16 unit), so a
    prefix by characters can be far too long; each step shrinks the cut in
    proportion to the overshoot, so a few passes are enough.
    """
    if _encoded_length(text) <= budget:
        return text, False
    cut = max(0, min(len(text), budget))
    while (size := _encoded_length(text[:cut])) > budget:
        cut = cut * budget // size
    return text[:cut], True


def dead_letter_record(
    source: SourceRecord, rejection: RejectedRecord, consumer: str
) -> OutboundRecord[DeadLetterEvent]:
    key = source.partition_key or source.sequence_number
    event: DeadLetterEvent = {
        "event_id": source.event_id(consumer),
        "consumer": consumer,
        "stage": rejection.stage,
        "reason": _cut(rejection.reason, MAX_REASON_CHARS),
        "errors": [
            {"field": _cut(e["field"], MAX_REASON_CHARS), "reason": _cut(e["reason"], MAX_REASON_CHARS)}
            for e in rejection.errors[:MAX_ERRORS]
        ],
        "source": {
            "stream_name": source.stream_name,
            "shard_id": source.shard_id,
            "sequence_number": source.sequence_number,
            "partition_key": source.partition_key,
            "approximate_arrival_timestamp": source.approximate_arrival_timestamp,
        },
        "raw_data": "",
        "raw_data_truncated": False,
    }
    budget = MAX_RECORD_BYTES - len(key.encode()) - len(encode_event(event))
    event["raw_data"], event["raw_data_truncated"] = fit_json_string(source.data, budget)
    return OutboundRecord(event, key, source)
