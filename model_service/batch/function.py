"""The scheduled scoring function, built from its settings: one month of trips in S3 in, its predictions file out.

EventBridge Scheduler (or the backfill) names a month in the event,
``schedule`` reads it, ``monthly.score_month`` scores the month with the batch
job's code and replaces its output in one step, so a re-run is harmless. The
models (duration and cost, MODEL_URIS) are loaded once per container, when
``score_function.py`` is imported.

A month that cannot be scored (its input is missing or unreadable, the event
is malformed) raises: Lambda retries the asynchronous invocation, then sends
the event and the error to the scoring dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from model_service.batch.monthly import score_month
from model_service.batch.schedule import scoring_request
from model_service.batch.storage import remove_leftover_copies
from model_service.config import Settings
from model_service.service import RideModels
from model_service.telemetry import function_telemetry


class ScoringFunction:
    def __init__(self, models: RideModels, settings: Settings, logger: Logger, metrics: Metrics) -> None:
        self.models = models
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
        self._handle = metrics.log_metrics(logger.inject_lambda_context(self._score))

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """What Lambda calls: the month scored (or skipped), as the function answers and logs it."""
        answer: dict[str, Any] = self._handle(event, context)
        return answer

    def _score(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        request = scoring_request(event)
        result = score_month(
            self.models, request.taxi_type, request.month, self.settings, skip_existing=request.skip_existing
        )
        answer = result.as_dict(self.models.versions)
        if result.report is None:
            self.metrics.add_metric(name="MonthsSkipped", unit=MetricUnit.Count, value=1)
        else:
            self.metrics.add_metric(name="MonthsScored", unit=MetricUnit.Count, value=1)
            self.metrics.add_metric(name="RowsPredicted", unit=MetricUnit.Count, value=result.report.predicted)
            self.metrics.add_metric(name="RowsNotPredicted", unit=MetricUnit.Count, value=result.report.unpredicted)
        self.logger.info(f"month {result.status}", extra=answer)
        return answer


def scoring_function(settings: Settings) -> ScoringFunction:
    """The scoring function, its models loaded (MODEL_URIS), after removing what killed runs left in /tmp."""
    logger, metrics = function_telemetry(settings, default_service="ride-duration-scoring")
    if removed := remove_leftover_copies():
        logger.warning("removed the S3 copies of runs killed before their clean-up", extra={"directories": removed})
    models = RideModels.from_settings(settings)
    logger.info("models loaded", extra={"model_uris": settings.model_uris, "model_versions": models.versions})
    return ScoringFunction(models, settings, logger, metrics)
