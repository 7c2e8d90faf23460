"""Replay the batches an event source gave up on: read their records back and process them again.

When Lambda gives a Kinesis batch up (retries or record age exhausted), its
on-failure queue gets only where the batch was: stream, shard, first and last
sequence number, size. While the records are still on the stream (within
its retention), this reads them back and runs them through the function's own
processor, so they become the same events, with the same event_ids, as they
would have. A message is deleted only once every record of its batch is
accounted for: published as an output event or as a dead letter.

It runs with the function's own settings: ``function_settings`` reads them
from the environment of the version the function's ``live`` alias runs, as
the function itself reads them at start-up.

What ``python -m stream_tools replay`` runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from botocore.exceptions import ClientError

from model_service.config import Settings
from model_service.errors import InvalidSetting
from model_service.kinesis.processor import StreamBatchProcessor
from model_service.kinesis.publish import (
    SYSTEM_CLOCK,
    UNREACHABLE_ERRORS,
    Clock,
    Deadline,
    connection_reason,
    endpoint_of,
)
from model_service.model.deploy import LIVE_ALIAS
from stream_tools.local_invoke import kinesis_record
from stream_tools.reach import CannotReach

MAX_MESSAGES_PER_RECEIVE = 10
"""SQS's limit."""


@dataclass(frozen=True)
class FunctionSettings:
    """A deployed function's settings: the environment of the version its live alias runs, read as it reads it."""

    function_name: str
    version: str
    """The version read: the live alias' (its main one), or ``$LATEST`` for a function without the alias."""
    aliased: bool
    """Whether the function has a live alias (the decision function has none: its $LATEST runs)."""
    environment: Mapping[str, str]
    settings: Settings
    shares: Mapping[str, float] = field(default_factory=dict)
    """Other versions the alias sends a share of the batches to (weighted routing), by version."""

    @property
    def which(self) -> str:
        """``its live alias, version 3``, or ``no live alias: its $LATEST``."""
        if self.aliased:
            return f"its {LIVE_ALIAS} alias, version {self.version}"
        return f"no {LIVE_ALIAS} alias: its $LATEST"


def function_settings(lambda_client: Any, function_name: str) -> FunctionSettings:
    """The settings ``function_name`` runs with: its live alias' version's environment variables.

    Raises InvalidSetting for a function that does not exist or cannot be
    read, CannotReach when Lambda's endpoint does not answer.
    """
    try:
        try:
            alias = lambda_client.get_alias(FunctionName=function_name, Name=LIVE_ALIAS)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            alias = None
        version = alias["FunctionVersion"] if alias else "$LATEST"
        configuration = lambda_client.get_function_configuration(FunctionName=function_name, Qualifier=version)
    except UNREACHABLE_ERRORS as exc:
        raise CannotReach("Lambda", endpoint_of(lambda_client), connection_reason(exc)) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ResourceNotFoundException":
            where = endpoint_of(lambda_client)
            raise InvalidSetting(f"--from-function {function_name}: no such Lambda function at {where}") from None
        raise InvalidSetting(
            f"--from-function {function_name}: its settings cannot be read: {error.get('Code')}: {error.get('Message')}"
        ) from None
    environment = dict(configuration.get("Environment", {}).get("Variables", {}))
    shares = (alias or {}).get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
    return FunctionSettings(
        function_name, version, alias is not None, environment, Settings.from_env(environment), dict(shares)
    )


@dataclass(frozen=True)
class FailedBatch:
    """Where a given-up batch was, from the ``KinesisBatchInfo`` of Lambda's on-failure record."""

    stream_arn: str
    shard_id: str
    first_sequence_number: str
    last_sequence_number: str
    size: int

    @property
    def stream_name(self) -> str:
        return self.stream_arn.rpartition("/")[2]

    @classmethod
    def from_message(cls, body: str) -> FailedBatch:
        """The batch an on-failure record names, or ValueError saying which of its fields is wrong."""
        try:
            info = json.loads(body)["KinesisBatchInfo"]
            batch = cls(
                info["streamArn"],
                info["shardId"],
                info["startSequenceNumber"],
                info["endSequenceNumber"],
                info["batchSize"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not an on-failure record of a Kinesis event source ({exc!r} missing or wrong)") from None
        for name in ("stream_arn", "shard_id", "first_sequence_number", "last_sequence_number"):
            if not isinstance(getattr(batch, name), str) or not getattr(batch, name):
                raise ValueError(f"not an on-failure record: its {name} is {getattr(batch, name)!r}, not text")
        for name in ("first_sequence_number", "last_sequence_number"):
            if not getattr(batch, name).isdigit():
                raise ValueError(f"not an on-failure record: its {name} is {getattr(batch, name)!r}, not a number")
        if isinstance(batch.size, bool) or not isinstance(batch.size, int) or batch.size < 1:
            raise ValueError(f"not an on-failure record: its batchSize is {batch.size!r}, not a count of records")
        return batch


def read_batch(kinesis: Any, batch: FailedBatch) -> list[dict[str, Any]]:
    """The batch's records still on the stream, first to last sequence number, as Lambda delivers them."""
    iterator = kinesis.get_shard_iterator(
        StreamName=batch.stream_name,
        ShardId=batch.shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=batch.first_sequence_number,
    )["ShardIterator"]
    last = int(batch.last_sequence_number)
    records: list[dict[str, Any]] = []
    while iterator:
        response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        for record in response["Records"]:
            if int(record["SequenceNumber"]) > last:
                return records
            records.append(
                kinesis_record(
                    record["Data"],
                    record["SequenceNumber"],
                    record["PartitionKey"],
                    stream_arn=batch.stream_arn,
                    shard_id=batch.shard_id,
                    arrival_timestamp=record["ApproximateArrivalTimestamp"].timestamp(),
                )
            )
        if not response["Records"] and not response.get("MillisBehindLatest"):
            return records  # caught up with the shard: the rest of the batch is not there
        iterator = response.get("NextShardIterator")
    return records


def missing_records(batch: FailedBatch, records: list[dict[str, Any]]) -> str | None:
    """Why ``records`` are not the whole batch (its first records expired, say), or None when they are."""
    sequence_numbers = [r["kinesis"]["sequenceNumber"] for r in records]
    if (
        len(records) >= batch.size
        and sequence_numbers[0] == batch.first_sequence_number
        and sequence_numbers[-1] == batch.last_sequence_number
    ):
        return None
    return (
        f"only {len(records)} of the batch's {batch.size} records, {batch.first_sequence_number} to"
        f" {batch.last_sequence_number}, are still on {batch.stream_name} (past its retention?)"
    )


@dataclass
class ReplayReport:
    batches: int = 0
    """On-failure messages read."""
    replayed: int = 0
    """Messages whose records are all accounted for, and so deleted."""
    records: int = 0
    published: int = 0
    dead_letters: int = 0
    kept: list[str] = field(default_factory=list)
    """Each message left on the queue, and why."""


@dataclass
class Replayer:
    """Replays one function's given-up batches through that function's processor."""

    sqs: Any
    kinesis: Any
    processor: StreamBatchProcessor[Any, Any]
    input_stream: str
    """The function's input stream: a message about another stream belongs to another function's queue."""
    seconds_per_batch: float = 60.0
    clock: Clock = SYSTEM_CLOCK

    def replay(self, queue_url: str) -> ReplayReport:
        """Replay every message of the queue, each on its own: one that cannot be replayed is kept, with why.

        Received messages stay invisible to others (and to this loop) while
        they are worked on; the kept ones are made visible again at the end,
        for the next replay, instead of staying hidden for the whole timeout.
        """
        report = ReplayReport()
        visibility = int(MAX_MESSAGES_PER_RECEIVE * self.seconds_per_batch) + 60
        kept_handles: list[str] = []
        while messages := self.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=MAX_MESSAGES_PER_RECEIVE,
            WaitTimeSeconds=1,
            VisibilityTimeout=visibility,
        ).get("Messages", []):
            for message in messages:
                report.batches += 1
                why_kept = self._replay_message(message["Body"], report)
                if why_kept is None:
                    self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    report.replayed += 1
                else:
                    report.kept.append(f"message {message['MessageId']}: {why_kept}")
                    kept_handles.append(message["ReceiptHandle"])
        for handle in kept_handles:
            self.sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
        return report

    def _replay_message(self, body: str, report: ReplayReport) -> str | None:
        """None once the message's batch is all accounted for, else why it is kept.

        A message that is not an on-failure record, or whose place on the
        stream cannot be read (an unknown or expired shard, a sequence number
        Kinesis refuses), is kept with the reason, and the next message goes
        on. A stream that cannot be written (StreamUnavailable) ends the run.
        """
        try:
            batch = FailedBatch.from_message(body)
        except ValueError as exc:
            return str(exc)
        if batch.stream_name != self.input_stream:
            return f"its batch is from {batch.stream_name}, not from this function's input {self.input_stream}"
        try:
            records = read_batch(self.kinesis, batch)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return f"its records cannot be read from {batch.stream_name}: {error.get('Code')}: {error.get('Message')}"
        if why := missing_records(batch, records):
            return why
        outcome = self.processor.process(
            KinesisStreamEvent({"Records": records}).records, Deadline.after(self.seconds_per_batch, self.clock)
        )
        report.records += outcome.records_in
        report.published += outcome.published
        report.dead_letters += outcome.dead_letters
        if outcome.unpublished:
            return f"{len(outcome.unpublished)} of its records could not be published in time; replay again"
        return None
