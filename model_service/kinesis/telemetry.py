"""What each function reports per batch: one log line and CloudWatch EMF metrics."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from model_service.config import Settings
from model_service.kinesis.processor import BatchOutcome


def function_telemetry(settings: Settings, default_service: str) -> tuple[Logger, Metrics]:
    """A function's JSON logger (also for model_service's own loggers) and its EMF metrics."""
    service = settings.service_name or default_service
    logger = Logger(service=service)
    copy_config_to_registered_loggers(source_logger=logger, include={"model_service"})
    return logger, Metrics(namespace=settings.metrics_namespace, service=service)


def report_batch(outcome: BatchOutcome, *, output_metric: str, logger: Logger, metrics: Metrics) -> None:
    counts = {
        "RecordsIn": outcome.records_in,
        output_metric: outcome.published,
        "DeadLetters": outcome.dead_letters,
        "PublishRetries": outcome.publish_retries,
        "UnpublishedRecords": len(outcome.unpublished),
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("batch processed", extra={**counts, "batch_item_failures": outcome.response()["batchItemFailures"]})
