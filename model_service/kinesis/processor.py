"""One Kinesis batch: decode each record, transform the good ones together, publish.

Every input record ends as an output event or a dead-letter event. A record
whose event could not be put on its stream is reported back to Lambda
(ReportBatchItemFailures), so the batch is retried from it; nothing else is
retried, and a record that can never be processed never blocks its shard.
The prediction and decision functions are both this processor, with their own
decode and transform steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from model_service.errors import RejectedRecord
from model_service.kinesis.decode import SourceRecord
from model_service.kinesis.events import dead_letter_event, outbound
from model_service.kinesis.publish import KinesisPublisher, Publishers

logger = logging.getLogger(__name__)

Decoded = TypeVar("Decoded")


@dataclass(slots=True)  # built once per record: not frozen, which would cost 4x
class OutputEvent:
    event: dict[str, Any]
    partition_key: str
    source: SourceRecord


Decode = Callable[[str], Decoded]
"""A record's base64 payload -> its decoded, validated content, or RejectedRecord."""
Transform = Callable[[list[tuple[SourceRecord, Decoded]]], list[OutputEvent]]
"""All accepted records of a batch -> their output events, in one go (one model call)."""


@dataclass
class BatchOutcome:
    records_in: int
    events: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    unpublished: list[SourceRecord] = field(default_factory=list)
    """Input records whose output or dead letter is not on its stream."""
    publish_retries: int = 0

    def batch_item_failures(self) -> list[dict[str, str]]:
        """Lambda checkpoints before the lowest reported sequence number, so that one is reported."""
        if not self.unpublished:
            return []
        lowest = min(self.unpublished, key=lambda source: int(source.sequence_number))
        return [{"itemIdentifier": lowest.sequence_number}]

    def lambda_response(self, *, test_run: bool, events_key: str) -> dict[str, Any]:
        """ReportBatchItemFailures' answer; with TEST_RUN, the events too, as the course returns them."""
        if test_run:
            return {events_key: self.events, "dead_letters": self.dead_letters, "batchItemFailures": []}
        return {"batchItemFailures": self.batch_item_failures()}


class StreamBatchProcessor(Generic[Decoded]):
    """Decode -> transform -> publish for one batch; ``publishers=None`` (TEST_RUN) only returns the events."""

    def __init__(self, decode: Decode, transform: Transform, publishers: Publishers | None) -> None:
        self.decode = decode
        self.transform = transform
        self.publishers = publishers

    def process(self, records: Iterable[KinesisStreamRecord]) -> BatchOutcome:
        accepted: list[tuple[SourceRecord, Decoded]] = []
        rejected: list[tuple[SourceRecord, RejectedRecord]] = []
        for record in records:
            source = SourceRecord.from_kinesis(record)
            try:
                accepted.append((source, self.decode(source.data)))
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
        outputs = self.transform(accepted)
        dead_letters = [(dead_letter_event(source, rejection), source) for source, rejection in rejected]

        outcome = BatchOutcome(
            records_in=len(accepted) + len(rejected),
            events=[output.event for output in outputs],
            dead_letters=[event for event, _ in dead_letters],
        )
        if self.publishers is not None:
            self._publish(
                outcome,
                self.publishers.output,
                [outbound(o.event, o.partition_key, o.source) for o in outputs],
            )
            self._publish(
                outcome,
                self.publishers.dead_letters,
                [outbound(event, src.partition_key or src.sequence_number, src) for event, src in dead_letters],
            )
        return outcome

    @staticmethod
    def _publish(outcome: BatchOutcome, publisher: KinesisPublisher, records: list) -> None:
        if not records:
            return
        result = publisher.publish(records)
        outcome.publish_retries += result.retried
        outcome.unpublished.extend(record.source for record in result.failed)
