"""AWS Lambda entry point of scheduled batch scoring: one month of trips in S3 in, its predictions file out.

A thin adapter over ``model_service``, from the same Dockerfile as the stream
functions (its ``scoring`` target, which adds parquet): EventBridge Scheduler
(or the backfill) names a month in the event, ``batch.schedule`` reads it,
``batch.monthly.score_month`` scores the month with the batch job's code and
replaces its output in one step, so a re-run is harmless. The model is loaded
once per container, at import, as in ``lambda_function.py``.

A month that cannot be scored (its input is missing or unreadable, the event
is malformed) raises: Lambda retries the asynchronous invocation, then sends
the event and the error to the scoring dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_service.batch.monthly import score_month
from model_service.batch.schedule import scoring_request
from model_service.batch.storage import remove_leftover_copies
from model_service.config import Settings
from model_service.kinesis.telemetry import function_telemetry
from model_service.service import PredictionService

settings = Settings.from_env()
logger, metrics = function_telemetry(settings, default_service="ride-duration-scoring")
if removed := remove_leftover_copies():
    logger.warning("removed the S3 copies of runs killed before their clean-up", extra={"directories": removed})

service = PredictionService.load(settings.model_uri, settings.model_version)
logger.info("model loaded", extra={"model_uri": settings.model_uri, "model_version": service.version})


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = scoring_request(event)
    result = score_month(service, request.taxi_type, request.month, settings, skip_existing=request.skip_existing)
    answer = result.as_dict(service.version)
    if result.report is None:
        metrics.add_metric(name="MonthsSkipped", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="MonthsScored", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RowsPredicted", unit=MetricUnit.Count, value=result.report.predicted)
        metrics.add_metric(name="RowsNotPredicted", unit=MetricUnit.Count, value=result.report.unpredicted)
    logger.info(f"month {result.status}", extra=answer)
    return answer
