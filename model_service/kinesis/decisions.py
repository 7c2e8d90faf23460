"""The decision step's steps: prediction events in, one decision event per ride out.

An independent consumer of the predictions stream (the course's "moderation
decision"): it flags rides predicted to run longer than a threshold. Its
output is idempotent on event_id: the same prediction event, however often
it is delivered, yields the same decision event with the same event_id, so a
consumer keeps the first and drops the rest.
"""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import Field, TypeAdapter
from typing_extensions import TypedDict

from model_service.kinesis.decode import SourceRecord, decode_as
from model_service.kinesis.processor import OutputEvent, StreamBatchProcessor
from model_service.kinesis.publish import Publishers
from model_service.schema import IGNORE_EXTRA, RideId

LONG_RIDE = "long_ride"
NORMAL = "normal"


class Prediction(TypedDict):
    __pydantic_config__ = IGNORE_EXTRA  # type: ignore[misc]

    ride_duration: Annotated[float, Field(strict=True, allow_inf_nan=False)]
    ride_id: RideId


class PredictionEvent(TypedDict):
    """What the prediction function publishes (extra fields from newer producers are ignored)."""

    __pydantic_config__ = IGNORE_EXTRA  # type: ignore[misc]

    model: str
    version: str
    prediction: Prediction
    event_id: NotRequired[str]


PREDICTION_EVENT = TypeAdapter(PredictionEvent)


def decode_prediction_event(data_b64: str) -> PredictionEvent:
    return decode_as(PREDICTION_EVENT, data_b64)


class DecideLongRides:
    def __init__(self, threshold_minutes: float) -> None:
        self.threshold_minutes = threshold_minutes

    def __call__(self, accepted: list[tuple[SourceRecord, PredictionEvent]]) -> list[OutputEvent]:
        return [
            OutputEvent(self.decision_event(source, event), str(event["prediction"]["ride_id"]), source)
            for source, event in accepted
        ]

    def decision_event(self, source: SourceRecord, event: PredictionEvent) -> dict:
        prediction_id = event.get("event_id") or source.event_id
        duration = event["prediction"]["ride_duration"]
        return {
            "event_id": f"{prediction_id}/decision",
            "prediction_event_id": prediction_id,
            "ride_id": event["prediction"]["ride_id"],
            "decision": LONG_RIDE if duration > self.threshold_minutes else NORMAL,
            "predicted_duration": duration,
            "threshold_minutes": self.threshold_minutes,
            "model": {"name": event["model"], "version": event["version"]},
        }


def decision_processor(
    threshold_minutes: float, publishers: Publishers | None
) -> StreamBatchProcessor[PredictionEvent]:
    return StreamBatchProcessor(decode_prediction_event, DecideLongRides(threshold_minutes), publishers)
