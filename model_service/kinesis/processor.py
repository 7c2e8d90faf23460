"""One Kinesis batch of rides: decode and validate each, predict all at once, publish.

Every input record ends as a prediction event or a dead-letter event. A record
whose output could not be put on its stream is reported back to Lambda
(ReportBatchItemFailures), so the batch is retried from it; nothing else is
retried, and a record that can never be predicted never blocks its shard.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from model_service.kinesis.decode import RejectedRecord, SourceRecord, decode_ride_event
from model_service.kinesis.events import OutboundRecord, dead_letter_event, outbound, prediction_event
from model_service.kinesis.publish import KinesisPublisher
from model_service.schema import RideEvent
from model_service.service import PredictionService

logger = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    records_in: int
    predictions: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    unpublished: list[SourceRecord] = field(default_factory=list)
    """Input records whose prediction or dead letter is not on its stream."""
    publish_retries: int = 0

    def batch_item_failures(self) -> list[dict[str, str]]:
        """Lambda checkpoints before the lowest reported sequence number, so that is the one reported."""
        if not self.unpublished:
            return []
        lowest = min(self.unpublished, key=lambda source: int(source.sequence_number))
        return [{"itemIdentifier": lowest.sequence_number}]


@dataclass
class Publishers:
    predictions: KinesisPublisher
    dead_letters: KinesisPublisher


class RideStreamProcessor:
    """Decode -> validate -> predict -> publish for one batch of Kinesis records.

    With ``publishers=None`` (TEST_RUN) nothing is published and the events are
    only returned.
    """

    def __init__(self, service: PredictionService, publishers: Publishers | None) -> None:
        self.service = service
        self.publishers = publishers

    def process(self, records: Iterable[KinesisStreamRecord]) -> BatchOutcome:
        accepted: list[tuple[SourceRecord, RideEvent]] = []
        rejected: list[tuple[SourceRecord, RejectedRecord]] = []
        for record in records:
            source = SourceRecord.from_kinesis(record)
            try:
                accepted.append((source, decode_ride_event(source.data)))
            except RejectedRecord as rejection:
                logger.warning(
                    "rejected record %s: %s",
                    source.event_id,
                    rejection,
                    extra={"event_id": source.event_id, "stage": rejection.stage, "reason": rejection.reason},
                )
                rejected.append((source, rejection))

        # An error here is not the records' fault: it propagates and fails the
        # batch, so that Lambda retries (or bisects) it instead of losing it.
        durations = self.service.predict([event.ride for _, event in accepted])

        version = self.service.version
        outcome = BatchOutcome(
            records_in=len(accepted) + len(rejected),
            predictions=[
                prediction_event(source, event.ride_id, duration, version)
                for (source, event), duration in zip(accepted, durations, strict=True)
            ],
            dead_letters=[dead_letter_event(source, rejection) for source, rejection in rejected],
        )
        if self.publishers is not None:
            self._publish(outcome, accepted, rejected)
        return outcome

    def _publish(
        self,
        outcome: BatchOutcome,
        accepted: list[tuple[SourceRecord, RideEvent]],
        rejected: list[tuple[SourceRecord, RejectedRecord]],
    ) -> None:
        assert self.publishers is not None
        predictions: list[OutboundRecord] = [
            outbound(event, str(ride_event.ride_id), source)
            for event, (source, ride_event) in zip(outcome.predictions, accepted, strict=True)
        ]
        dead_letters: list[OutboundRecord] = [
            outbound(event, source.partition_key or source.sequence_number, source)
            for event, (source, _) in zip(outcome.dead_letters, rejected, strict=True)
        ]
        for publisher, records in (
            (self.publishers.predictions, predictions),
            (self.publishers.dead_letters, dead_letters),
        ):
            if not records:
                continue
            result = publisher.publish(records)
            outcome.publish_retries += result.retried
            outcome.unpublished.extend(record.source for record in result.failed)
