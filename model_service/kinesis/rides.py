"""The prediction function's steps: ride records in, prediction events out."""

from __future__ import annotations

from model_service.kinesis.decode import SourceRecord, decode_ride_event
from model_service.kinesis.events import prediction_event
from model_service.kinesis.processor import OutputEvent, StreamBatchProcessor
from model_service.kinesis.publish import Publishers
from model_service.schema import RideEvent
from model_service.service import PredictionService


class PredictRides:
    """Predicts every accepted ride of a batch in one model call."""

    def __init__(self, service: PredictionService) -> None:
        self.service = service

    def __call__(self, accepted: list[tuple[SourceRecord, RideEvent]]) -> list[OutputEvent]:
        durations = self.service.predict([event["ride"] for _, event in accepted])
        version = self.service.version
        return [
            OutputEvent(prediction_event(source, event["ride_id"], duration, version), str(event["ride_id"]), source)
            for (source, event), duration in zip(accepted, durations, strict=True)
        ]


def ride_processor(service: PredictionService, publishers: Publishers | None) -> StreamBatchProcessor[RideEvent]:
    return StreamBatchProcessor(decode_ride_event, PredictRides(service), publishers)
