"""``python -m stream_tools replay``: given-up batches read back from the stream, processed as the function would."""

from __future__ import annotations

import json

import boto3
import pytest

from stream_tools.cli import main
from tests.conftest import DEAD_LETTERS, DECISIONS, PREDICTIONS
from tests.factories import ride_payload
from tests.streams import read_events

INPUT = "ride_events"


def on_failure_message(stream_arn: str, shard_id: str, first: str, last: str, size: int) -> str:
    """What Lambda sends to an on-failure destination when it gives a Kinesis batch up."""
    return json.dumps(
        {
            "requestContext": {
                "requestId": "c9b4e7f1-0000-0000-0000-000000000000",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:ride-duration-prediction",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 4,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": "2026-11-26T10:00:00.000Z",
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first,
                "endSequenceNumber": last,
                "approximateArrivalOfFirstRecord": "2026-11-26T09:59:00.000Z",
                "approximateArrivalOfLastRecord": "2026-11-26T09:59:01.000Z",
                "batchSize": size,
                "streamArn": stream_arn,
            },
        }
    )


@pytest.fixture
def streams(kinesis, monkeypatch, mlflow_model_dir):
    kinesis.create_stream(StreamName=INPUT, ShardCount=1)
    monkeypatch.setenv("MODEL_URI", str(mlflow_model_dir))
    for name, stream in {
        "INPUT_STREAM_NAME": INPUT,
        "PREDICTIONS_STREAM_NAME": PREDICTIONS,
        "DEAD_LETTER_STREAM_NAME": DEAD_LETTERS,
        "DECISIONS_STREAM_NAME": DECISIONS,
    }.items():
        monkeypatch.setenv(name, stream)
    return kinesis


@pytest.fixture
def queue(streams) -> str:
    return boto3.client("sqs").create_queue(QueueName="prediction-failed-batches")["QueueUrl"]


def put(kinesis, stream: str, payloads: list[bytes]) -> list[dict]:
    """Put each payload; return where each landed (ShardId, SequenceNumber)."""
    entries = [{"Data": p, "PartitionKey": str(i)} for i, p in enumerate(payloads)]
    return kinesis.put_records(StreamName=stream, Records=entries)["Records"]


def give_up(kinesis, queue: str, stream: str, landed: list[dict], size: int | None = None) -> None:
    """Send the on-failure message Lambda would send for the batch of ``landed`` records."""
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    first, last = landed[0]["SequenceNumber"], landed[-1]["SequenceNumber"]
    message = on_failure_message(arn, landed[0]["ShardId"], first, last, size or len(landed))
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=message)


def messages_left(queue: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


RIDES = [json.dumps(ride_payload(ride_id=f"lost-{i}", distance=1 + i)).encode() for i in range(5)]


def test_a_given_up_batch_becomes_the_predictions_and_dead_letters_the_function_would_have_made(streams, queue, capsys):
    put(streams, INPUT, [json.dumps(ride_payload(ride_id="before")).encode()])
    landed = put(streams, INPUT, [*RIDES, b"not json"])
    put(streams, INPUT, [json.dumps(ride_payload(ride_id="after")).encode()])
    give_up(streams, queue, INPUT, landed)

    assert main(["replay", "--queue-url", queue]) == 0

    predictions = read_events(streams, PREDICTIONS)
    expected_ids = [f"{INPUT}:{r['ShardId']}:{r['SequenceNumber']}/duration" for r in landed]
    assert [p["prediction"]["ride_id"] for p in predictions] == [f"lost-{i}" for i in range(5)]
    assert [p["event_id"] for p in predictions] == expected_ids[:5]
    assert [(d["event_id"], d["stage"]) for d in read_events(streams, DEAD_LETTERS)] == [(expected_ids[5], "decode")]
    assert messages_left(queue) == 0
    assert "1 on the queue, 1 replayed and deleted" in capsys.readouterr().out


def test_a_batch_no_longer_on_the_stream_keeps_its_message(streams, queue, capsys):
    landed = put(streams, INPUT, RIDES)
    give_up(streams, queue, INPUT, landed, size=len(landed) + 3)

    assert main(["replay", "--queue-url", queue]) == 11
    assert "only 5 of the batch's 8 records" in capsys.readouterr().out
    assert read_events(streams, PREDICTIONS) == []
    assert messages_left(queue) == 1


def test_a_message_about_another_functions_stream_is_kept(streams, queue, capsys):
    landed = put(streams, PREDICTIONS, [b"{}"])
    give_up(streams, queue, PREDICTIONS, landed)
    assert main(["replay", "--queue-url", queue]) == 11
    assert f"its batch is from {PREDICTIONS}, not from this function's input {INPUT}" in capsys.readouterr().out
    assert messages_left(queue) == 1


def test_a_message_that_is_not_an_on_failure_record_is_kept(streams, queue, capsys):
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody='{"hello": "world"}')
    assert main(["replay", "--queue-url", queue]) == 11
    assert "not an on-failure record of a Kinesis event source" in capsys.readouterr().out


def visible_messages(queue: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


BAD_BATCH_INFO = {
    "a stream ARN that is not text": ({"streamArn": 42}, "its stream_arn is 42, not text"),
    "an unknown shard": ({"shardId": "shardId-000000000099"}, "ResourceNotFoundException"),
    "a sequence number that is not text": ({"startSequenceNumber": 4.9e55}, "first_sequence_number is 4.9e+55"),
    "a sequence number that is not a number": ({"endSequenceNumber": "latest"}, "last_sequence_number is 'latest'"),
    "a batch size of 0": ({"batchSize": 0}, "its batchSize is 0, not a count of records"),
}


@pytest.mark.parametrize("fault", BAD_BATCH_INFO.values(), ids=BAD_BATCH_INFO.keys())
def test_a_bad_message_is_kept_visible_with_its_reason_and_the_good_one_behind_it_is_replayed(
    streams, queue, capsys, fault
):
    bad_fields, reason = fault
    landed = put(streams, INPUT, RIDES)
    arn = streams.describe_stream_summary(StreamName=INPUT)["StreamDescriptionSummary"]["StreamARN"]
    bad = json.loads(on_failure_message(arn, landed[0]["ShardId"], "1", "2", 2))
    bad["KinesisBatchInfo"].update(bad_fields)
    boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(bad))
    give_up(streams, queue, INPUT, landed)

    assert main(["replay", "--queue-url", queue]) == 11, "10 + the one message kept"
    (kept,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("kept:")]
    assert reason in kept
    assert [p["prediction"]["ride_id"] for p in read_events(streams, PREDICTIONS)] == [f"lost-{i}" for i in range(5)]
    assert visible_messages(queue) == messages_left(queue) == 1, "kept for the next replay, not hidden for minutes"


def test_the_decision_queue_is_replayed_into_decisions(streams, queue):
    prediction = {
        "model": "ride_duration_prediction_model",
        "version": "1",
        "prediction": {"ride_duration": 50.0, "ride_id": 7},
        "event_id": "ride_events:shardId-000000000000:42",
    }
    landed = put(streams, PREDICTIONS, [json.dumps(prediction).encode()])
    give_up(streams, queue, PREDICTIONS, landed)

    assert main(["replay", "--queue-url", queue, "--function", "decision"]) == 0
    (decision,) = read_events(streams, DECISIONS)
    assert (decision["event_id"], decision["decision"]) == ("ride_events:shardId-000000000000:42/decision", "long_ride")


def test_an_output_stream_that_cannot_be_written_stops_the_replay_and_keeps_the_message(streams, queue, capsys):
    give_up(streams, queue, INPUT, put(streams, INPUT, RIDES))
    streams.delete_stream(StreamName=PREDICTIONS)

    assert main(["replay", "--queue-url", queue]) == 2
    assert "ride_predictions: ResourceNotFoundException" in capsys.readouterr().err
    assert messages_left(queue) == 1


def test_a_model_that_cannot_load_stops_before_reading_the_queue(streams, queue, tmp_path, capsys):
    give_up(streams, queue, INPUT, put(streams, INPUT, RIDES))
    assert main(["replay", "--queue-url", queue, "--model-uri", str(tmp_path / "missing.bin")]) == 2
    assert "missing.bin" in capsys.readouterr().err
    assert messages_left(queue) == 1
