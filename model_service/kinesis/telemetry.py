"""What each function reports per batch: one log line and CloudWatch EMF metrics."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from model_service.kinesis.processor import BatchOutcome


def report_batch(outcome: BatchOutcome, *, output_metric: str, logger: Logger, metrics: Metrics) -> None:
    counts = {
        "RecordsIn": outcome.records_in,
        output_metric: len(outcome.events),
        "DeadLetters": len(outcome.dead_letters),
        "PublishRetries": outcome.publish_retries,
        "UnpublishedRecords": len(outcome.unpublished),
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("batch processed", extra={**counts, "batch_item_failures": outcome.batch_item_failures()})
