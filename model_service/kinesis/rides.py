"""The prediction function's transform: every accepted ride of a batch predicted in one model call."""

from __future__ import annotations

import math

from model_service.errors import RejectedRecord
from model_service.kinesis.events import PredictionEvent, prediction_record
from model_service.kinesis.processor import Refused, Transformed
from model_service.kinesis.records import SourceRecord
from model_service.schema import RideEvent
from model_service.service import PredictionService


class PredictRides:
    """Predicts every accepted ride of a batch in one call of its model, whatever the model predicts."""

    def __init__(self, service: PredictionService, consumer: str) -> None:
        self.service = service
        self.consumer = consumer

    def __call__(self, accepted: list[tuple[SourceRecord, RideEvent]]) -> Transformed[PredictionEvent]:
        values = self.service.predict([event["ride"] for _, event in accepted])
        target, version, consumer = self.service.target, self.service.version, self.consumer
        if all(map(math.isfinite, values)):
            return Transformed(
                [
                    prediction_record(source, event["ride_id"], value, target, version, consumer)
                    for (source, event), value in zip(accepted, values, strict=True)
                ]
            )
        # A model that answers NaN or infinity for some rides: those never reach the stream (a reader could not
        # parse the event), they are dead-lettered with the reason; the others go out.
        outputs, refused = [], []
        for (source, event), value in zip(accepted, values, strict=True):
            if math.isfinite(value):
                outputs.append(prediction_record(source, event["ride_id"], value, target, version, consumer))
            else:
                reason = f"the {target.name} model predicted {value} for this ride"
                refused.append(Refused(source, RejectedRecord("predict", reason)))
        return Transformed(outputs, refused)
