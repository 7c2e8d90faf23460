"""The decision function's steps: prediction events in, one decision event per ride out.

It flags rides predicted to run longer than a threshold (the course's
"moderation decision"). The decision's event_id derives from the
prediction's, so every delivery of a prediction gives the same decision event.
"""

from __future__ import annotations

from model_service.kinesis.decode import decode_as
from model_service.kinesis.events import DecisionEvent
from model_service.kinesis.records import OutboundRecord, SourceRecord
from model_service.schema import PREDICTION_EVENT, PredictionEvent


def decode_prediction_event(data_b64: str) -> PredictionEvent:
    return decode_as(PREDICTION_EVENT, data_b64)


class DecideLongRides:
    def __init__(self, threshold_minutes: float) -> None:
        self.threshold_minutes = threshold_minutes

    def __call__(self, accepted: list[tuple[SourceRecord, PredictionEvent]]) -> list[OutboundRecord[DecisionEvent]]:
        return [
            OutboundRecord(self.decision_event(source, event), str(event["prediction"]["ride_id"]), source)
            for source, event in accepted
        ]

    def decision_event(self, source: SourceRecord, event: PredictionEvent) -> DecisionEvent:
        prediction_id = event.get("event_id") or source.event_id
        duration = event["prediction"]["ride_duration"]
        return {
            "event_id": f"{prediction_id}/decision",
            "prediction_event_id": prediction_id,
            "ride_id": event["prediction"]["ride_id"],
            "decision": "long_ride" if duration > self.threshold_minutes else "normal",
            "predicted_duration": duration,
            "threshold_minutes": self.threshold_minutes,
            "model": {"name": event["model"], "version": event["version"]},
        }
