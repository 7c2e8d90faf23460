"""One Kinesis batch: decode each record, transform the good ones together, publish.

Every input record ends as an output event or a dead letter. A record whose
event or dead letter is not on its stream by the deadline is reported to
Lambda (ReportBatchItemFailures) so that the batch is retried from it; a
record that can never be processed is dead-lettered and never blocks its
shard. The prediction and decision functions are both this processor, with
their own decode and transform steps.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from model_service.errors import RejectedRecord, StreamUnavailable
from model_service.kinesis.events import dead_letter_record
from model_service.kinesis.publish import Deadline, Publishers
from model_service.kinesis.records import Event, OutboundRecord, SourceRecord

logger = logging.getLogger(__name__)

Decoded = TypeVar("Decoded")

Decode = Callable[[str], Decoded]
"""A record's base64 payload -> its decoded, validated content, or RejectedRecord."""


@dataclass(slots=True)
class Refused:
    """A record the transform could not turn into an event, and why: dead-lettered like one that failed to decode."""

    source: SourceRecord
    rejection: RejectedRecord


class Transformed(NamedTuple, Generic[Event]):
    """What a transform made of a batch's accepted records: their output records, and those it refused."""

    outputs: list[OutboundRecord[Event]]
    refused: Sequence[Refused] = ()


Transform = Callable[[list[tuple[SourceRecord, Decoded]]], Transformed[Event]]
"""All accepted records of a batch -> their output records, in one go (one model call), and any it refused."""
Label = Callable[[Event], str]
"""An output event -> what it is counted as in the batch's report (a decision's outcome)."""


@dataclass
class BatchOutcome:
    records_in: int
    published: int = 0
    """Output events put on their stream."""
    dead_letters: int = 0
    """Dead letters put on their stream, ``publish`` stage included."""
    unpublished: list[SourceRecord] = field(default_factory=list)
    """Input records whose output event or dead letter is not on its stream."""
    publish_retries: int = 0
    published_by_label: Counter[str] = field(default_factory=Counter)
    """Output events put on their stream, by label, when the processor labels them."""

    def response(self) -> PartialItemFailureResponse:
        """Lambda checkpoints before the lowest reported sequence number and retries from it, so only that one."""
        if not self.unpublished:
            return {"batchItemFailures": []}
        lowest = min(self.unpublished, key=lambda source: int(source.sequence_number))
        return {"batchItemFailures": [{"itemIdentifier": lowest.sequence_number}]}


class StreamBatchProcessor(Generic[Decoded, Event]):
    """Decode -> transform -> publish, for one batch at a time."""

    def __init__(
        self,
        decode: Decode[Decoded],
        transform: Transform[Decoded, Event],
        publishers: Publishers,
        consumer: str,
        label: Label[Event] | None = None,
    ) -> None:
        self.decode = decode
        self.transform = transform
        self.publishers = publishers
        self.consumer = consumer
        """Who this processor publishes as: named in its dead letters and their event_ids."""
        self.label = label

    def process(self, records: Iterable[KinesisStreamRecord], deadline: Deadline) -> BatchOutcome:
        accepted: list[tuple[SourceRecord, Decoded]] = []
        rejected: list[tuple[SourceRecord, RejectedRecord]] = []
        for record in records:
            source = SourceRecord.from_kinesis(record)
            try:
                accepted.append((source, self.decode(source.data)))
            except RejectedRecord as rejection:
                self._log_rejection(source, rejection)
                rejected.append((source, rejection))

        # An error here is not the records' fault: it propagates and fails the
        # batch, so that Lambda retries (or bisects) it instead of losing it.
        records_in = len(accepted) + len(rejected)
        outputs, refused = self.transform(accepted)
        for refusal in refused:
            self._log_rejection(refusal.source, refusal.rejection)
            rejected.append((refusal.source, refusal.rejection))
        try:
            return self._publish(records_in, outputs, rejected, deadline)
        except StreamUnavailable as exc:
            logger.error(
                "%s; failing the invocation so that Lambda retries the batch",
                exc,
                extra={"stream": exc.stream_name, "error_code": exc.code},
            )
            raise

    def _publish(
        self,
        records_in: int,
        outputs: list[OutboundRecord[Event]],
        rejected: list[tuple[SourceRecord, RejectedRecord]],
        deadline: Deadline,
    ) -> BatchOutcome:
        published = self.publishers.output.publish(outputs, deadline)
        for output, reason in published.rejected:
            rejection = RejectedRecord("publish", reason)
            self._log_rejection(output.source, rejection)
            rejected.append((output.source, rejection))
        dead_letters = [dead_letter_record(source, rejection, self.consumer) for source, rejection in rejected]
        dead_lettered = self.publishers.dead_letters.publish(dead_letters, deadline)
        for dead_letter, reason in dead_lettered.rejected:
            # Built to fit any Kinesis limit, so never expected; reported, so that it is not lost either.
            logger.error("dead letter %s refused: %s", dead_letter.event["event_id"], reason)

        lost = {id(output) for output in published.failed} | {id(output) for output, _ in published.rejected}
        labels = Counter(self.label(o.event) for o in outputs if id(o) not in lost) if self.label else Counter()
        unpublished = [
            *(output.source for output in published.failed),
            *(dead_letter.source for dead_letter in dead_lettered.failed),
            *(dead_letter.source for dead_letter, _ in dead_lettered.rejected),
        ]
        return BatchOutcome(
            records_in=records_in,
            published=len(outputs) - len(published.failed) - len(published.rejected),
            dead_letters=len(dead_letters) - len(dead_lettered.failed) - len(dead_lettered.rejected),
            unpublished=unpublished,
            publish_retries=published.retried + dead_lettered.retried,
            published_by_label=labels,
        )

    @staticmethod
    def _log_rejection(source: SourceRecord, rejection: RejectedRecord) -> None:
        logger.warning(
            "rejected record %s: %s",
            source.record_id,
            rejection,
            extra={"record_id": source.record_id, "stage": rejection.stage, "reason": rejection.reason},
        )
