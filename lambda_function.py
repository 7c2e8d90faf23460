"""AWS Lambda entry point: Kinesis ride events in, ride-duration prediction events out.

A thin adapter over ``model_service``: it reads the settings, loads the model
once per container (here, at import, so a model that cannot load fails the
function's init and Lambda keeps the records), and reports each batch's
outcome as a log line, EMF metrics and ReportBatchItemFailures.
"""

from __future__ import annotations

import gc
from typing import Any

from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_service.config import Settings
from model_service.kinesis.publish import Publishers
from model_service.kinesis.rides import ride_processor
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

processor = ride_processor(
    service,
    None
    if settings.test_run
    else Publishers.for_streams(
        settings.predictions_stream_name, settings.dead_letter_stream_name, settings.publish_max_attempts
    ),
)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = processor.process(KinesisStreamEvent(event).records)
    report_batch(outcome, output_metric="Predictions", logger=logger, metrics=metrics)
    return outcome.lambda_response(test_run=settings.test_run, events_key="predictions")
