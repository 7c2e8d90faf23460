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


def test_without_a_model_replay_refuses_and_says_what_to_give(streams, queue, monkeypatch, capsys):
    give_up(streams, queue, INPUT, put(streams, INPUT, RIDES))
    monkeypatch.delenv("MODEL_URI")
    assert main(["replay", "--queue-url", queue]) == 2
    assert capsys.readouterr().err == (
        "error: replay needs the model the function runs:"
        " give --from-function NAME (reads its live alias) or --model-uri URI\n"
    )
    assert messages_left(queue) == 1, "nothing replayed with a model picked by default"


def deploy_function(
    name: str, *environments: dict[str, str], live: str | None = "1", shares: dict[str, float] | None = None
) -> None:
    """A Lambda function with a published version per environment, in order; its live alias on ``live`` if given.

    ``shares``: other versions the alias sends a share of the batches to, as in a canary deployment.
    """
    import io
    import zipfile

    role = boto3.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("lambda_function.py", "def lambda_handler(event, context): pass\n")
    functions = boto3.client("lambda")
    functions.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="lambda_function.lambda_handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": environments[0]},
    )
    functions.publish_version(FunctionName=name)
    for environment in environments[1:]:
        functions.update_function_configuration(FunctionName=name, Environment={"Variables": environment})
        functions.publish_version(FunctionName=name)
    if live is not None:
        routing = {"RoutingConfig": {"AdditionalVersionWeights": shares}} if shares else {}
        functions.create_alias(FunctionName=name, Name="live", FunctionVersion=live, **routing)


FUNCTION = "ride-duration-demo-duration"
FUNCTION_INPUT = "fn_ride_events"
FUNCTION_PREDICTIONS = "fn_ride_predictions"


@pytest.fixture
def deployed(streams, monkeypatch, mlflow_model_dir, tmp_path) -> dict[str, str]:
    """The duration function as the stack deploys it, on streams of its own; this shell sets none of its settings.

    Its live alias runs version 1; version 2, not live yet, names a model that is not there.
    """
    for stream in (FUNCTION_INPUT, FUNCTION_PREDICTIONS):
        streams.create_stream(StreamName=stream, ShardCount=1)
    for name in ("MODEL_URI", "INPUT_STREAM_NAME", "PREDICTIONS_STREAM_NAME", "DEAD_LETTER_STREAM_NAME"):
        monkeypatch.delenv(name)
    live = {
        "MODEL_URI": str(mlflow_model_dir),
        "CONSUMER_NAME": "duration",
        "INPUT_STREAM_NAME": FUNCTION_INPUT,
        "PREDICTIONS_STREAM_NAME": FUNCTION_PREDICTIONS,
        "DEAD_LETTER_STREAM_NAME": DEAD_LETTERS,
        "TEST_RUN": "false",
    }
    deploy_function(FUNCTION, live, {**live, "MODEL_URI": str(tmp_path / "not-deployed-yet")})
    return live


def test_from_function_replays_with_the_settings_its_live_alias_runs_and_says_so(streams, queue, deployed, capsys):
    landed = put(streams, FUNCTION_INPUT, RIDES)
    give_up(streams, queue, FUNCTION_INPUT, landed)

    assert main(["replay", "--queue-url", queue, "--from-function", FUNCTION]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"replaying as {FUNCTION} (its live alias, version 1): MODEL_URI={deployed['MODEL_URI']}"
    predictions = read_events(streams, FUNCTION_PREDICTIONS)
    assert [p["prediction"]["ride_id"] for p in predictions] == [f"lost-{i}" for i in range(5)]
    assert (
        predictions[0]["event_id"] == f"{FUNCTION_INPUT}:{landed[0]['ShardId']}:{landed[0]['SequenceNumber']}/duration"
    )
    assert messages_left(queue) == 0


def test_a_live_alias_shared_with_another_version_is_noted_after_the_line(streams, queue, monkeypatch, capsys):
    monkeypatch.delenv("MODEL_URI")
    environment = {"MODEL_URI": "s3://models/ride-duration/1", "INPUT_STREAM_NAME": "elsewhere"}
    deploy_function(
        "canary", environment, {**environment, "MODEL_URI": "s3://models/ride-duration/2"}, shares={"2": 0.1}
    )
    main(["replay", "--queue-url", queue, "--from-function", "canary"])
    assert capsys.readouterr().out.splitlines()[:2] == [
        "replaying as canary (its live alias, version 1): MODEL_URI=s3://models/ride-duration/1",
        "note: the alias also sends 10% of the batches to version 2",
    ]


def test_model_uri_overrides_the_functions_model_and_the_line_says_so(
    streams, queue, deployed, mlflow_model_dir, tmp_path, capsys
):
    give_up(streams, queue, FUNCTION_INPUT, put(streams, FUNCTION_INPUT, RIDES))
    other = tmp_path / "missing.bin"
    assert main(["replay", "--queue-url", queue, "--from-function", FUNCTION, "--model-uri", str(other)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == (
        f"replaying as {FUNCTION} (its live alias, version 1): MODEL_URI={other}"
        f" (given by --model-uri; the function runs {mlflow_model_dir})"
    )
    assert "missing.bin" in captured.err, "the model given, not the function's, was loaded"


def test_from_function_naming_no_function_is_one_line_and_status_2(streams, queue, capsys):
    assert main(["replay", "--queue-url", queue, "--from-function", "no-such-function"]) == 2
    assert capsys.readouterr().err == (
        "error: --from-function no-such-function: no such Lambda function at https://lambda.us-east-1.amazonaws.com\n"
    )


def test_from_function_whose_environment_names_no_model_is_refused_not_given_a_default(streams, queue, capsys):
    deploy_function("ride-duration-demo-decision", {"DECISIONS_STREAM_NAME": DECISIONS}, live=None)
    assert main(["replay", "--queue-url", queue, "--from-function", "ride-duration-demo-decision"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: ride-duration-demo-decision (no live alias: its $LATEST) has no MODEL_URI in its environment"
    )


def test_from_function_without_a_live_alias_replays_with_its_latest_settings(streams, queue, monkeypatch, capsys):
    monkeypatch.delenv("DECISIONS_STREAM_NAME")
    streams.create_stream(StreamName="fn_ride_decisions", ShardCount=1)
    environment = {"PREDICTIONS_STREAM_NAME": PREDICTIONS, "DECISIONS_STREAM_NAME": "fn_ride_decisions"}
    deploy_function("ride-duration-demo-decision", environment, live=None)
    prediction = {
        "model": "ride_duration_prediction_model",
        "version": "1",
        "prediction": {"ride_duration": 50.0, "ride_id": 7},
        "event_id": "ride_events:shardId-000000000000:42",
    }
    give_up(streams, queue, PREDICTIONS, put(streams, PREDICTIONS, [json.dumps(prediction).encode()]))

    argv = ["replay", "--queue-url", queue, "--function", "decision", "--from-function", "ride-duration-demo-decision"]
    assert main(argv) == 0
    assert (
        capsys.readouterr().out.splitlines()[0]
        == "replaying as ride-duration-demo-decision (no live alias: its $LATEST)"
    )
    assert [d["decision"] for d in read_events(streams, "fn_ride_decisions")] == ["long_ride"]
