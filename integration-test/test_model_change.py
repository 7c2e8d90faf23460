"""Changing a model on the running stack: a challenger in shadow, the live alias moved, split, and back.

A stack of its own (its own streams) in the session's LocalStack, serving a
duration champion resolved from a local MLflow store where training
registered two versions (the second is the challenger). Rides flow while the
model changes; every step ends on the same check: every ride has its
champion's prediction, under one event_id.

The challenger is deployed with the project's command (``challenge
--stack-name``: a stack update that adds the shadow consumer). A promotion's
stack update cannot be run here: LocalStack's CloudFormation does not update
nested stacks or aliases, and ``promote`` says so rather than report a switch
that did not happen. The switch itself, the live alias moved to a new
version (all at once, or split by weight as CodeDeploy does), is made with
the Lambda calls the update would make (``local_stack.aws.move_live_alias``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from local_stack import aws as local_aws
from local_stack.aws import MODEL_BUCKET, MODEL_PREFIX, wait_until
from model_service.cli import main as model_service
from model_service.model.deploy import prepare_deployment, stack_parameters
from model_service.model.target import DURATION
from model_service.service import PredictionService
from tests.factories import ride_payload
from tests.streams import put

STACK_NAME = "ride-change-it"
PARAMETERS = {
    "InputStreamName": "change_ride_events",
    "PredictionsStreamName": "change_ride_predictions",
    "DecisionsStreamName": "change_ride_decisions",
    "DeadLetterStreamName": "change_ride_dead_letters",
    "ShadowPredictionsStreamName": "change_ride_shadow_predictions",
    "ShadowDeadLetterStreamName": "change_ride_shadow_dead_letters",
}
UPLOAD_TO = f"s3://{MODEL_BUCKET}/{MODEL_PREFIX}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory, phase):
    """A local MLflow store where training registered ride-duration twice: version 1 champion, 2 challenger."""
    from model_service.model.training import train
    from model_service.sample_data import make_trips

    root = tmp_path_factory.mktemp("change-registry")
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    with phase("train a champion and a challenger"), pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for month, seed in ((1, 1), (2, 7)):
            trips = make_trips(4000, seed=seed, start=f"2021-0{month}-01")
            trips.to_parquet(root / f"{month}.parquet")
        train(str(root / "1.parquet"), str(root / "2.parquet"), targets=("duration",), tracking_uri=tracking)
        train(str(root / "2.parquet"), str(root / "1.parquet"), targets=("duration",), tracking_uri=tracking)
    return root, tracking


@pytest.fixture(scope="module")
def env(registry, localstack):
    """The environment the commands run in: the store, LocalStack, this stack's stream names."""
    root, tracking = registry
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", tracking)
        for name, value in local_aws.client_environment(localstack.endpoint).items():
            patch.setenv(name, value)
        patch.setenv("PREDICTIONS_STREAM_NAME", PARAMETERS["PredictionsStreamName"])
        patch.setenv("SHADOW_PREDICTIONS_STREAM_NAME", PARAMETERS["ShadowPredictionsStreamName"])
        yield tracking


@pytest.fixture(scope="module")
def champion(env, clients):
    return prepare_deployment("models:/ride-duration@champion", upload_to=UPLOAD_TO, s3=clients("s3"), tracking_uri=env)


@pytest.fixture(scope="module")
def challenger(env, clients):
    return prepare_deployment(
        "models:/ride-duration@challenger", upload_to=UPLOAD_TO, s3=clients("s3"), tracking_uri=env
    )


@pytest.fixture(scope="module")
def change_stack(clients, stack, champion, phase):
    """Its cost consumer serves the session's cost model, which the session's ``stack`` uploaded where it looks."""
    with phase(f"deploy template.yaml as {STACK_NAME} with the duration champion"):
        parameters = {**PARAMETERS, **stack_parameters(DURATION, "Model", champion.model_uri, champion.version)}
        deployed = local_aws.deploy(clients, STACK_NAME, parameters)
    yield deployed
    clients("cloudformation").delete_stack(StackName=STACK_NAME)


class Rides:
    """Rides put on the stack's input stream, at a rate, from a thread: traffic that flows while the model changes."""

    def __init__(self, endpoint: str, stream: str) -> None:
        self.endpoint, self.stream = endpoint, stream
        self.sent: list[str] = []

    def send(self, count: int, rate: float) -> threading.Thread:
        tag = uuid.uuid4().hex[:6]

        def run() -> None:
            for start in range(0, count, 10):
                ids = [f"{tag}-{i}" for i in range(start, min(count, start + 10))]
                put(
                    self.endpoint,
                    self.stream,
                    [json.dumps(ride_payload(r, pu=1 + i % 200)).encode() for i, r in enumerate(ids)],
                )
                self.sent.extend(ids)
                time.sleep(10 / rate)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def events(clients, stream: str) -> list[dict]:
    from model_service.kinesis.read import read_all

    return read_all(clients("kinesis"), stream)


def by_consumer(clients, stream: str, consumer: str) -> dict[str, dict]:
    """ride_id -> the first event of ``consumer`` for it, in stream order (a repeat has the same event_id)."""
    found: dict[str, dict] = {}
    for event in events(clients, stream):
        if event.get("event_id", "").endswith(f"/{consumer}"):
            found.setdefault(str(event["prediction"]["ride_id"]), event)
    return found


def wait_for_all(clients, stream: str, consumer: str, rides: list[str], timeout: float = 120) -> dict[str, dict]:
    def arrived() -> dict[str, dict] | None:
        found = by_consumer(clients, stream, consumer)
        return found if set(rides) <= set(found) else None

    return wait_until(arrived, timeout, f"every ride's {consumer} event on {stream}", interval=1)


def test_a_challenger_deployed_by_the_command_answers_every_ride_in_shadow_while_the_champion_is_unchanged(
    clients, localstack, change_stack, champion, challenger, phase, capsys
):
    with phase("challenge --stack-name: the shadow consumer added to the running stack"):
        assert (
            model_service(
                ["challenge", "--model", "ride-duration", "--upload-to", UPLOAD_TO, "--stack-name", STACK_NAME]
            )
            == 0
        )
    assert f"{STACK_NAME}-duration-shadow serves version {challenger.version}" in capsys.readouterr().out
    rides = Rides(localstack.endpoint, change_stack.input_stream)
    rides.send(60, rate=30).join()

    with phase("every ride predicted by the champion and by its shadow"):
        ours = wait_for_all(clients, change_stack.predictions_stream, "duration", rides.sent)
        theirs = wait_for_all(clients, PARAMETERS["ShadowPredictionsStreamName"], "duration-shadow", rides.sent)
    assert {e["version"] for e in ours.values()} == {champion.version}
    assert {e["version"] for e in theirs.values()} == {challenger.version}
    served = PredictionService.load(challenger.model_uri)
    ride = json.loads(json.dumps(ride_payload(rides.sent[0], pu=1)))["ride"]
    assert theirs[rides.sent[0]]["prediction"]["ride_duration"] == pytest.approx(served.predict([ride])[0])
    decided = [e["prediction_event_id"] for e in events(clients, change_stack.decisions_stream)]
    assert decided
    assert not any(d.endswith("/duration-shadow") for d in decided), "the decision reads no shadow"

    assert model_service(["compare", "--model", "ride-duration", "--from-start", "--plot", "live.png"]) == 0
    out = capsys.readouterr().out
    assert f"rides answered by both:     {len(rides.sent)}" in out
    assert "by the challenger only:     0" in out


def test_promote_through_localstacks_cloudformation_says_the_consumer_was_not_updated_and_moves_no_alias(
    clients, change_stack, challenger, env, capsys
):
    """LocalStack's CloudFormation reports the update done without updating the nested consumer: caught."""
    import mlflow

    code = model_service(["promote", "--model", "ride-duration", "--upload-to", UPLOAD_TO, "--stack-name", STACK_NAME])

    assert code == 2
    assert "live alias still serves" in capsys.readouterr().err
    aliases = mlflow.MlflowClient(env).get_registered_model("ride-duration").aliases
    assert {alias: str(version) for alias, version in aliases.items()} == {"champion": "1", "challenger": "2"}


def test_the_live_alias_moved_while_rides_flow_switches_version_between_batches_and_loses_no_ride(
    clients, localstack, change_stack, champion, challenger, phase
):
    rides = Rides(localstack.endpoint, change_stack.input_stream)
    sending = rides.send(300, rate=30)
    time.sleep(3)
    with phase("the live alias moved to the challenger, then back, while rides flow"):
        local_aws.move_live_alias(clients, change_stack.duration_function, challenger.model_uri, challenger.version)
        time.sleep(3)
        local_aws.move_live_alias(clients, change_stack.duration_function, champion.model_uri, champion.version)
    sending.join()

    with phase("every ride predicted"):
        found = wait_for_all(clients, change_stack.predictions_stream, "duration", rides.sent)
    ordered = sorted(found.values(), key=lambda e: int(e["event_id"].rsplit(":", 1)[1].split("/")[0]))
    versions = [e["version"] for e in ordered]
    switches = [i for i in range(1, len(versions)) if versions[i] != versions[i - 1]]
    assert set(versions) == {champion.version, challenger.version}
    assert len(switches) == 2, f"one switch to the challenger and one back, in input order: {versions}"


def test_a_live_alias_split_by_weight_serves_both_versions_and_loses_no_ride(
    clients, localstack, change_stack, champion, challenger, phase
):
    local_aws.move_live_alias(clients, change_stack.duration_function, challenger.model_uri, challenger.version, 0.5)
    rides = Rides(localstack.endpoint, change_stack.input_stream)
    rides.send(200, rate=20).join()

    with phase("every ride predicted, by one version or the other"):
        found = wait_for_all(clients, change_stack.predictions_stream, "duration", rides.sent)
    assert {e["version"] for e in found.values()} == {champion.version, challenger.version}
