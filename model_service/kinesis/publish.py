"""Put records on a Kinesis stream without losing any, and say which could not be put.

boto3's standard retry mode handles whole-call failures (throttling, 5xx,
connection errors). PutRecords also fails *per entry* while the call itself
succeeds; only those entries are re-sent here, with capped exponential
backoff and full jitter. Each entry's ErrorCode decides, never FailedRecordCount
alone: some implementations (LocalStack's fault injection) report a count
that does not match the entries.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from model_service.kinesis.events import OutboundRecord

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024
"""PutRecords limits; a record's size counts its data and its partition key."""

logger = logging.getLogger(__name__)


def kinesis_client() -> Any:
    """A Kinesis client whose own retries cover throttled and failed calls."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=10)
    return boto3.client("kinesis", config=config)


@dataclass
class Publishers:
    """Where a function's output events and its dead letters go."""

    output: KinesisPublisher
    dead_letters: KinesisPublisher

    @classmethod
    def for_streams(cls, output_stream: str, dead_letter_stream: str, max_attempts: int) -> Publishers:
        client = kinesis_client()
        return cls(
            output=KinesisPublisher(client, output_stream, max_attempts=max_attempts),
            dead_letters=KinesisPublisher(client, dead_letter_stream, max_attempts=max_attempts),
        )


def record_size(record: OutboundRecord) -> int:
    return len(record.data) + len(record.partition_key.encode())


def chunks(records: Sequence[OutboundRecord]) -> Iterator[list[OutboundRecord]]:
    """Split records into PutRecords calls within the count and size limits, keeping order."""
    chunk: list[OutboundRecord] = []
    size = 0
    for record in records:
        rsize = record_size(record)
        if chunk and (len(chunk) == MAX_RECORDS_PER_CALL or size + rsize > MAX_BYTES_PER_CALL):
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += rsize
    if chunk:
        yield chunk


@dataclass
class PublishResult:
    failed: list[OutboundRecord] = field(default_factory=list)
    """Records still not on the stream after every attempt."""
    retried: int = 0
    """How many entries were sent again after a failure."""


class KinesisPublisher:
    def __init__(
        self,
        client: Any,
        stream_name: str,
        *,
        max_attempts: int = 5,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._jitter = jitter

    def publish(self, records: Sequence[OutboundRecord]) -> PublishResult:
        result = PublishResult()
        sendable = []
        for record in records:
            if record_size(record) > MAX_BYTES_PER_RECORD:
                logger.error("record for %s exceeds 1 MiB, cannot be put", record.source.event_id)
                result.failed.append(record)
            else:
                sendable.append(record)
        for chunk in chunks(sendable):
            self._put_with_retries(chunk, result)
        return result

    def _put_with_retries(self, pending: list[OutboundRecord], result: PublishResult) -> None:
        for attempt in range(self.max_attempts):
            if attempt:
                result.retried += len(pending)
                self._sleep(self._jitter() * min(self.max_delay, self.base_delay * 2**attempt))
            pending = self._put_once(pending)
            if not pending:
                return
        logger.error("%d records not put on %s after %d attempts", len(pending), self.stream_name, self.max_attempts)
        result.failed.extend(pending)

    def _put_once(self, records: list[OutboundRecord]) -> list[OutboundRecord]:
        """Send one PutRecords call; return the records that did not make it."""
        try:
            response = self.client.put_records(
                StreamName=self.stream_name,
                Records=[{"Data": r.data, "PartitionKey": r.partition_key} for r in records],
            )
        except Exception as exc:  # noqa: BLE001 - boto3 already retried; the records stay pending
            logger.warning("PutRecords to %s failed: %s", self.stream_name, exc)
            return records
        failed = [r for r, entry in zip(records, response["Records"], strict=True) if entry.get("ErrorCode")]
        if failed:
            codes = sorted({e["ErrorCode"] for e in response["Records"] if e.get("ErrorCode")})
            logger.warning("%d of %d entries to %s failed: %s", len(failed), len(records), self.stream_name, codes)
        return failed
