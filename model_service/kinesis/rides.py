"""The prediction function's transform: every accepted ride of a batch predicted in one model call."""

from __future__ import annotations

from model_service.kinesis.events import PredictionEvent, prediction_record
from model_service.kinesis.records import OutboundRecord, SourceRecord
from model_service.schema import RideEvent
from model_service.service import PredictionService


class PredictRides:
    """Predicts every accepted ride of a batch in one model call."""

    def __init__(self, service: PredictionService) -> None:
        self.service = service

    def __call__(self, accepted: list[tuple[SourceRecord, RideEvent]]) -> list[OutboundRecord[PredictionEvent]]:
        durations = self.service.predict([event["ride"] for _, event in accepted])
        version = self.service.version
        return [
            prediction_record(source, event["ride_id"], duration, version)
            for (source, event), duration in zip(accepted, durations, strict=True)
        ]
