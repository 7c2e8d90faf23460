"""StreamBatchProcessor with fake publishers: what becomes of each record of a batch."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent

from model_service.errors import StreamUnavailable
from model_service.kinesis.decode import decode_ride_event
from model_service.kinesis.processor import StreamBatchProcessor, Transformed
from model_service.kinesis.publish import CollectingPublisher, Deadline, Publishers, PublishResult, R
from model_service.kinesis.records import OutboundRecord, SourceRecord
from model_service.kinesis.rides import PredictRides
from model_service.schema import RideEvent
from stream_tools.local_invoke import FIRST_SEQUENCE_NUMBER
from tests.factories import answering_nan_beyond, kinesis_event, ride_payload


class Scripted:
    """A publisher that fails or refuses the records whose event_id it is told to, and keeps the rest."""

    def __init__(self, fail: set[str] = frozenset(), refuse: set[str] = frozenset(), error: Exception | None = None):
        self.fail, self.refuse, self.error = fail, refuse, error
        self.published: list[Any] = []

    def publish(self, records: Sequence[R], deadline: Deadline) -> PublishResult[R]:
        if self.error:
            raise self.error
        result: PublishResult[R] = PublishResult()
        for record in records:
            event_id = record.source.event_id(CONSUMER)
            if event_id in self.fail:
                result.failed.append(record)
            elif event_id in self.refuse:
                result.rejected.append((record, "Kinesis refused the record: ValidationException: too odd"))
            else:
                self.published.append(record)
        return result


class Echo:
    """A transform that makes one output per accepted record, and notes each call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, accepted: list[tuple[SourceRecord, RideEvent]]) -> Transformed[dict[str, Any]]:
        self.calls.append(len(accepted))
        return Transformed(
            [OutboundRecord({"ride_id": event["ride_id"]}, str(event["ride_id"]), source) for source, event in accepted]
        )


CONSUMER = "duration"


def event_id(n: int) -> str:
    return f"ride_events:shardId-000000000000:{FIRST_SEQUENCE_NUMBER + n}/{CONSUMER}"


def process(output: Any, dead_letters: Any, payloads: list[Any], transform: Any = None):
    publishers = Publishers(output, dead_letters)
    processor = StreamBatchProcessor(decode_ride_event, transform or Echo(), publishers, CONSUMER)
    return processor.process(KinesisStreamEvent(kinesis_event(payloads)).records, Deadline.after(60))


BATCH = [ride_payload(ride_id=1), b"not json", ride_payload(ride_id=2, distance=-1), ride_payload(ride_id=3)]


def test_accepted_records_are_transformed_together_and_published_the_rest_dead_lettered():
    output, dead_letters, transform = CollectingPublisher(), CollectingPublisher(), Echo()
    outcome = process(output, dead_letters, BATCH, transform)

    assert transform.calls == [2]
    assert [r.event["ride_id"] for r in output.take()] == [1, 3]
    assert [(r.event["event_id"], r.event["stage"]) for r in dead_letters.take()] == [
        (event_id(1), "decode"),
        (event_id(2), "validate"),
    ]
    assert (outcome.records_in, outcome.published, outcome.dead_letters) == (4, 2, 2)
    assert outcome.response() == {"batchItemFailures": []}


def test_an_output_kinesis_refuses_becomes_a_dead_letter_at_the_publish_stage():
    output, dead_letters = Scripted(refuse={event_id(3)}), CollectingPublisher()
    outcome = process(output, dead_letters, BATCH)

    refused = [r.event for r in dead_letters.take() if r.event["stage"] == "publish"]
    assert [(e["event_id"], e["reason"]) for e in refused] == [
        (event_id(3), "Kinesis refused the record: ValidationException: too odd")
    ]
    assert base64.b64decode(refused[0]["raw_data"]) == json.dumps(ride_payload(ride_id=3)).encode()
    assert (outcome.published, outcome.dead_letters, outcome.unpublished) == (1, 3, [])


def test_unpublished_outputs_and_dead_letters_report_the_lowest_sequence_number():
    outcome = process(Scripted(fail={event_id(3)}), Scripted(fail={event_id(2)}), BATCH)
    assert [s.event_id(CONSUMER) for s in outcome.unpublished] == [event_id(3), event_id(2)]
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": str(FIRST_SEQUENCE_NUMBER + 2)}]}
    assert (outcome.published, outcome.dead_letters) == (1, 1)


def test_a_stream_that_cannot_be_written_fails_the_batch_with_one_error_log(caplog):
    broken = Scripted(error=StreamUnavailable("ride_predictions", "KMSDisabledException", "key disabled"))
    with pytest.raises(StreamUnavailable), caplog.at_level(logging.ERROR):
        process(broken, CollectingPublisher(), BATCH)
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "ride_predictions: KMSDisabledException" in error.getMessage()


def test_an_error_in_the_transform_fails_the_batch_and_publishes_nothing():
    def broken(accepted: list) -> list:
        raise MemoryError("model blew up")

    output, dead_letters = CollectingPublisher(), CollectingPublisher()
    with pytest.raises(MemoryError):
        process(output, dead_letters, BATCH, broken)
    assert output.take() == dead_letters.take() == []


def test_an_empty_batch_publishes_nothing():
    outcome = process(CollectingPublisher(), CollectingPublisher(), [])
    assert (outcome.records_in, outcome.response()) == (0, {"batchItemFailures": []})


def test_a_ride_the_model_answers_nan_for_is_dead_lettered_at_the_predict_stage_and_the_rest_published(service):
    transform = PredictRides(answering_nan_beyond(service, miles=100), CONSUMER)
    batch = [ride_payload(ride_id=1), ride_payload(ride_id=2, distance=300.0), ride_payload(ride_id=3)]
    output, dead_letters = CollectingPublisher(), CollectingPublisher()

    outcome = process(output, dead_letters, batch, transform)

    assert [r.event["prediction"]["ride_id"] for r in output.take()] == [1, 3]
    (dead,) = [r.event for r in dead_letters.take()]
    assert (dead["event_id"], dead["stage"]) == (event_id(1), "predict")
    assert dead["reason"] == "the duration model predicted nan for this ride"
    assert outcome.response() == {"batchItemFailures": []}
