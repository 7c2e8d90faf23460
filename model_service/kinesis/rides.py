"""The prediction function's transform: every accepted ride of a batch predicted in one model call."""

from __future__ import annotations

import math

from model_service.errors import RejectedRecord
from model_service.kinesis.events import PredictionEvent, prediction_record
from model_service.kinesis.processor import Refused
from model_service.kinesis.records import OutboundRecord, SourceRecord
from model_service.schema import RideEvent
from model_service.service import PredictionService

Prediction = OutboundRecord[PredictionEvent]


class PredictRides:
    """Predicts every accepted ride of a batch in one call of its model, whatever the model predicts."""

    def __init__(self, service: PredictionService, consumer: str) -> None:
        self.service = service
        self.consumer = consumer

    def __call__(self, accepted: list[tuple[SourceRecord, RideEvent]]) -> list[Prediction | Refused]:
        values = self.service.predict([event["ride"] for _, event in accepted])
        target, version = self.service.target, self.service.version
        if all(map(math.isfinite, values)):
            return [
                prediction_record(source, event["ride_id"], value, target, version, self.consumer)
                for (source, event), value in zip(accepted, values, strict=True)
            ]
        # A model that answers NaN or infinity for some rides: those never reach the stream (a reader could not
        # parse the event), they are dead-lettered with the reason; the others go out.
        return [
            prediction_record(source, event["ride_id"], value, target, version, self.consumer)
            if math.isfinite(value)
            else Refused(source, RejectedRecord("predict", f"the {target.name} model predicted {value} for this ride"))
            for (source, event), value in zip(accepted, values, strict=True)
        ]
