"""AWS Lambda entry point: Kinesis ride events in, ride-duration prediction events out.

A thin adapter over ``model_service``: it reads the settings, loads the model
once per container (here, at import, so a model that cannot load fails the
function's init and Lambda keeps the records), and reports each batch's
outcome as logs, EMF metrics and ReportBatchItemFailures.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_service.config import Settings
from model_service.kinesis.processor import Publishers, RideStreamProcessor
from model_service.kinesis.publish import KinesisPublisher, kinesis_client
from model_service.service import PredictionService

settings = Settings.from_env()
logger = Logger(service=settings.service_name)
copy_config_to_registered_loggers(source_logger=logger, include={"model_service"})
metrics = Metrics(namespace=settings.metrics_namespace, service=settings.service_name)

service = PredictionService.load(settings.model_uri, settings.model_version)
logger.info("model loaded", extra={"model_uri": settings.model_uri, "model_version": service.version})


def _publishers() -> Publishers | None:
    if settings.test_run:
        return None
    client = kinesis_client()
    return Publishers(
        predictions=KinesisPublisher(
            client, settings.predictions_stream_name, max_attempts=settings.publish_max_attempts
        ),
        dead_letters=KinesisPublisher(
            client, settings.dead_letter_stream_name, max_attempts=settings.publish_max_attempts
        ),
    )


processor = RideStreamProcessor(service, _publishers())


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = processor.process(KinesisStreamEvent(event).records)

    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=outcome.records_in)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=len(outcome.predictions))
    metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=len(outcome.dead_letters))
    metrics.add_metric(name="PublishRetries", unit=MetricUnit.Count, value=outcome.publish_retries)
    metrics.add_metric(name="UnpublishedRecords", unit=MetricUnit.Count, value=len(outcome.unpublished))
    failures = outcome.batch_item_failures()
    logger.info(
        "batch processed",
        extra={
            "records_in": outcome.records_in,
            "predictions": len(outcome.predictions),
            "dead_letters": len(outcome.dead_letters),
            "publish_retries": outcome.publish_retries,
            "batch_item_failures": failures,
        },
    )
    if settings.test_run:
        return {"predictions": outcome.predictions, "dead_letters": outcome.dead_letters, "batchItemFailures": []}
    return {"batchItemFailures": failures}
