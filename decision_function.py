"""AWS Lambda entry point of the decision step: prediction events in, decision events out.

A second, independent consumer of the predictions stream; the prediction
function knows nothing of it. It loads no model, so its cold start is small.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_service.config import Settings
from model_service.kinesis.decisions import DecisionsTestRunResponse, decision_processor
from model_service.kinesis.publish import CollectingPublisher, Publishers
from model_service.kinesis.telemetry import function_telemetry, report_batch

settings = Settings.from_env()
logger, metrics = function_telemetry(settings, default_service="ride-duration-decision")

collected, collected_dead_letters = CollectingPublisher(), CollectingPublisher()
publishers = (
    Publishers(collected, collected_dead_letters)
    if settings.test_run
    else Publishers.for_streams(settings.decisions_stream_name, settings)
)
processor = decision_processor(settings.long_ride_threshold_minutes, publishers)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    outcome = processor.process(KinesisStreamEvent(event).records, publishers.deadline_for(context))
    report_batch(outcome, output_metric="Decisions", logger=logger, metrics=metrics)
    if settings.test_run:
        response: DecisionsTestRunResponse = {
            "decisions": [record.event for record in collected.take()],
            "dead_letters": [record.event for record in collected_dead_letters.take()],
            "batchItemFailures": [],
        }
        return response
    return outcome.response()
