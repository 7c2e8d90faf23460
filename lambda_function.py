"""AWS Lambda entry point: Kinesis ride events in, ride-duration prediction events out.

A thin adapter over ``model_service``: it reads the settings, loads the model
once per container (here, at import, so a model that cannot load fails the
function's init and Lambda keeps the records), and reports each batch's
outcome as a log line, EMF metrics and ReportBatchItemFailures.
"""

from __future__ import annotations

import gc
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_service.config import Settings
from model_service.kinesis.publish import CollectingPublisher, Publishers
from model_service.kinesis.rides import PredictionsTestRunResponse, ride_processor
from model_service.kinesis.telemetry import function_telemetry, report_batch
from model_service.service import PredictionService

settings = Settings.from_env()
logger, metrics = function_telemetry(settings, default_service="ride-duration-prediction")

service = PredictionService.load(settings.model_uri, settings.model_version)
logger.info("model loaded", extra={"model_uri": settings.model_uri, "model_version": service.version})
# The model and the modules live as long as the container: moved out of the
# cyclic GC's generations, they are not rescanned during every batch, which
# otherwise doubles the time per record of a large batch.
gc.freeze()

# TEST_RUN publishes nowhere: the handler returns what was published instead, as the course's does.
collected, collected_dead_letters = CollectingPublisher(), CollectingPublisher()
publishers = (
    Publishers(collected, collected_dead_letters)
    if settings.test_run
    else Publishers.for_streams(settings.predictions_stream_name, settings)
)
processor = ride_processor(service, publishers)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    outcome = processor.process(KinesisStreamEvent(event).records, publishers.deadline_for(context))
    report_batch(outcome, output_metric="Predictions", logger=logger, metrics=metrics)
    if settings.test_run:
        response: PredictionsTestRunResponse = {
            "predictions": [record.event for record in collected.take()],
            "dead_letters": [record.event for record in collected_dead_letters.take()],
            "batchItemFailures": [],
        }
        return response
    return outcome.response()
