"""The prediction function's steps: ride records in, prediction events out."""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

from model_service.kinesis.decode import decode_ride_event
from model_service.kinesis.events import DeadLetterEvent, PredictionEvent, prediction_record
from model_service.kinesis.processor import StreamBatchProcessor
from model_service.kinesis.publish import Publishers
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


def ride_processor(
    service: PredictionService, publishers: Publishers
) -> StreamBatchProcessor[RideEvent, PredictionEvent]:
    return StreamBatchProcessor(decode_ride_event, PredictRides(service), publishers)


class PredictionsTestRunResponse(PartialItemFailureResponse):
    """TEST_RUN's answer: the events that would have been published, as the course's handler returns them."""

    predictions: list[PredictionEvent]
    dead_letters: list[DeadLetterEvent]
