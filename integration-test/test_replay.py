"""A batch given up on purpose, replayed with ``python -m stream_tools replay``: its rides come out after all.

The template gives nothing up by default, so this deploys a second stack of
it with MaximumRetryAttempts=0 and a model prefix holding no model: the
prediction functions cannot start, and the event sources give the batch up to
their on-failure queues at the first failure. The duration model is then put
where the duration function looks for it, and the replay, given only the
function's name, reads the function's settings from its live alias, reads the
batch back from the input stream and predicts it with the duration model, as
the duration function would have.
"""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from local_stack import aws as local_aws
from local_stack.aws import client_environment, wait_until
from model_service.kinesis.read import StreamTail
from stream_tools.cli import main
from tests.factories import ride_payload
from tests.streams import put

STACK_NAME = "ride-duration-replay-it"
PARAMETERS = {
    "InputStreamName": "replay_ride_events",
    "PredictionsStreamName": "replay_ride_predictions",
    "DecisionsStreamName": "replay_ride_decisions",
    "DeadLetterStreamName": "replay_ride_dead_letters",
    "ModelPrefix": "no-model-here",
    "MaximumRetryAttempts": "0",
}


@pytest.fixture(scope="module")
def stack(clients, phase):
    with phase(f"deploy template.yaml as {STACK_NAME}, bound to give batches up"):
        deployed = local_aws.deploy(clients, STACK_NAME, PARAMETERS)
    yield deployed
    clients("cloudformation").delete_stack(StackName=STACK_NAME)


def messages(clients, queue_url: str) -> int:
    attributes = clients("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_batch_given_up_on_purpose_is_replayed_into_the_predictions_it_would_have_made(
    clients, localstack, stack, model_dir, monkeypatch, capsys, phase
):
    tag = uuid.uuid4().hex[:8]
    queue_url = stack.outputs["DurationFailedBatchQueueUrl"]
    ride_ids = [f"{tag}-{i}" for i in range(8)]
    payloads = [json.dumps(ride_payload(ride_id, distance=1 + i)).encode() for i, ride_id in enumerate(ride_ids)]
    put(localstack.endpoint, stack.input_stream, payloads)

    with phase("the event source gives the batch up"):
        wait_until(lambda: messages(clients, queue_url) > 0, 120, "the batch on the on-failure queue")
    body = json.loads(clients("sqs").receive_message(QueueUrl=queue_url, VisibilityTimeout=0)["Messages"][0]["Body"])
    batch = body["KinesisBatchInfo"]
    assert batch["batchSize"] == len(ride_ids)
    assert not StreamTail(clients("kinesis"), stack.predictions_stream).events(), "no prediction came out"

    model_uri = local_aws.upload_model(clients, model_dir, "ride-duration", prefix=PARAMETERS["ModelPrefix"])
    for name, value in client_environment(localstack.endpoint).items():
        monkeypatch.setenv(name, value)
    for name in ("MODEL_URI", "INPUT_STREAM_NAME", "PREDICTIONS_STREAM_NAME", "DEAD_LETTER_STREAM_NAME"):
        monkeypatch.delenv(name, raising=False)  # the function's settings, from its live alias, and nothing else
    boto3.setup_default_session()  # the replay's clients read the environment just set
    function = stack.outputs["DurationFunctionName"]
    with phase("replay"):
        status = main(["replay", "--queue-url", queue_url, "--from-function", function])
    out = capsys.readouterr().out
    assert status == 0, out
    replaying = out.splitlines()[0]
    assert replaying.startswith(f"replaying as {function} (its live alias, version "), out
    assert replaying.endswith(f"): MODEL_URI={model_uri}"), out
    assert "1 replayed and deleted" in out

    predictions = StreamTail(clients("kinesis"), stack.predictions_stream).events()
    assert sorted(p["prediction"]["ride_id"] for p in predictions) == sorted(ride_ids)
    first, last = int(batch["startSequenceNumber"]), int(batch["endSequenceNumber"])
    for prediction in predictions:
        record_id, consumer = prediction["event_id"].rsplit("/", 1)
        stream, shard, sequence_number = record_id.split(":")
        assert (stream, shard, consumer) == (stack.input_stream, batch["shardId"], "duration")
        assert first <= int(sequence_number) <= last, "the event_id the function would have given"
    assert messages(clients, queue_url) == 0
