"""A Kinesis-triggered Lambda function built from its settings: the one way both stream handlers are made.

A handler module holds a single call (``lambda_handler = prediction_function(Settings.from_env())``),
made once per container at import: a model that cannot load fails the
function's init, and Lambda keeps the records until it is fixed. What is built
lives as long as the container: the telemetry, the model, the publishers and
the processor. Each batch is then decode -> transform -> publish
(``processor``), reported as one log line and EMF metrics, and answered with
ReportBatchItemFailures.

TEST_RUN publishes nowhere: the function answers with the events it would
have published instead, as the course's handler does.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from model_service.config import Settings
from model_service.kinesis.decisions import DecideRides, DecodePrediction, decision_label, rules
from model_service.kinesis.decode import decode_ride_event
from model_service.kinesis.processor import BatchOutcome, Decode, Label, StreamBatchProcessor, Transform
from model_service.kinesis.publish import CollectingPublisher, Publishers
from model_service.kinesis.rides import PredictRides
from model_service.service import PredictionService
from model_service.telemetry import function_telemetry


@dataclass(frozen=True)
class Steps:
    """What one stream function does that another does not: where it reads, how it decodes and transforms."""

    decode: Decode[Any]
    transform: Transform[Any, Any]
    input_stream: str
    """The stream its event source reads (replay checks a given-up batch came from it)."""
    output_stream: str
    output_name: str
    """What it publishes ("predictions"): TEST_RUN's answer key, and, capitalised, the metric counting them."""
    consumer: str
    """Who it publishes as (``duration``, ``cost``, ``decision``): in its events' ids and its dead letters."""
    label: Label[Any] | None = None
    """What each output event is counted as, besides the output metric (a decision's outcome)."""

    def processor(self, publishers: Publishers) -> StreamBatchProcessor[Any, Any]:
        return StreamBatchProcessor(self.decode, self.transform, publishers, self.consumer, self.label)


def prediction_steps(service: PredictionService, settings: Settings) -> Steps:
    """One model's consumer of the ride stream: the model says what it predicts, so any model serves here."""
    consumer = settings.consumer_name or service.target.name
    return Steps(
        decode_ride_event,
        PredictRides(service, consumer),
        settings.input_stream_name,
        settings.predictions_stream_name,
        "predictions",
        consumer,
    )


def decision_steps(settings: Settings) -> Steps:
    decision_rules = rules(settings)
    consumer = settings.consumer_name or "decision"
    return Steps(
        DecodePrediction(decision_rules),
        DecideRides(decision_rules, consumer),
        settings.predictions_stream_name,
        settings.decisions_stream_name,
        "decisions",
        consumer,
        decision_label,
    )


class StreamFunction:
    """One stream function: its steps, where it publishes, and how it reports each batch."""

    def __init__(self, steps: Steps, settings: Settings, logger: Logger, metrics: Metrics) -> None:
        self.steps = steps
        self.logger = logger
        self.metrics = metrics
        self.collected: tuple[CollectingPublisher, CollectingPublisher] | None = None
        if settings.test_run:
            self.collected = (CollectingPublisher(), CollectingPublisher())
            self.publishers = Publishers(*self.collected, margin_seconds=settings.publish_margin_seconds)
        else:
            self.publishers = Publishers.for_streams(steps.output_stream, settings)
        self.processor = steps.processor(self.publishers)
        self._handle = metrics.log_metrics(logger.inject_lambda_context(self._process))

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """What Lambda calls: the batch's ReportBatchItemFailures (TEST_RUN: the events, and an empty list).

        ``context`` is Lambda's context object, or a stand-in with the attributes Powertools reads.
        """
        answer: dict[str, Any] = self._handle(event, context)
        return answer

    def _process(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        outcome = self.processor.process(KinesisStreamEvent(event).records, self.publishers.deadline_for(context))
        self._report(outcome)
        if self.collected is not None:
            output, dead_letters = self.collected
            return {
                self.steps.output_name: [record.event for record in output.take()],
                "dead_letters": [record.event for record in dead_letters.take()],
                "batchItemFailures": [],
            }
        return dict(outcome.response())

    def _report(self, outcome: BatchOutcome) -> None:
        counts = {
            "RecordsIn": outcome.records_in,
            self.steps.output_name.capitalize(): outcome.published,
            "DeadLetters": outcome.dead_letters,
            "PublishRetries": outcome.publish_retries,
            "UnpublishedRecords": len(outcome.unpublished),
        }
        counts.update({_metric_name(label): n for label, n in outcome.published_by_label.items()})
        for name, value in counts.items():
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        failures = outcome.response()["batchItemFailures"]
        self.logger.info("batch processed", extra={**counts, "batch_item_failures": failures})


class PredictionFunction(StreamFunction):
    """The prediction function, which keeps its model at hand (for the logs, the demo and the tests)."""

    def __init__(self, service: PredictionService, settings: Settings, logger: Logger, metrics: Metrics) -> None:
        self.service = service
        super().__init__(prediction_steps(service, settings), settings, logger, metrics)


def prediction_function(settings: Settings) -> PredictionFunction:
    """The prediction function, its model loaded (or the error that says why it cannot be)."""
    service = PredictionService.from_settings(settings)
    # Named for what it predicts unless POWERTOOLS_SERVICE_NAME says otherwise: ride-cost-prediction for a cost model.
    logger, metrics = function_telemetry(settings, default_service=f"ride-{service.target.name}-prediction")
    logger.info("model loaded", extra={"model_uri": settings.model_uri, "model_version": service.version})
    function = PredictionFunction(service, settings, logger, metrics)
    # The model and the modules live as long as the container: moved out of the
    # cyclic GC's generations, they are not rescanned during every batch, which
    # otherwise doubles the time per record of a large batch.
    gc.freeze()
    return function


def decision_function(settings: Settings) -> StreamFunction:
    """The decision function; it loads no model, so its cold start is small."""
    logger, metrics = function_telemetry(settings, default_service="ride-duration-decision")
    return StreamFunction(decision_steps(settings), settings, logger, metrics)


def _metric_name(label: str) -> str:
    """``no_rule`` -> ``NoRule``, as the other metrics are named."""
    return "".join(part.capitalize() for part in label.split("_"))
