"""The decision step: prediction events of any model in, one decision per event out, same reliability rules.

The step itself runs on collecting publishers; the function is built from
settings only to check its wiring (streams, TEST_RUN, reporting).
"""

import base64
import json

import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent

from model_service.config import Settings
from model_service.kinesis.function import decision_steps
from model_service.kinesis.publish import CollectingPublisher, Deadline, Publishers
from stream_tools.local_invoke import FIRST_SEQUENCE_NUMBER, LocalContext
from tests.conftest import DEAD_LETTERS, DECISIONS, PREDICTIONS
from tests.factories import kinesis_event, raw_kinesis_event, ride_payload
from tests.faults import KinesisFaults, failing_entries
from tests.lambda_simulation import SimulatedClock, SimulatedContext
from tests.streams import read_events, read_stream


def prediction(ride_id=256, duration=21.3, event_id="ride_events:shardId-000000000000:1"):
    return {
        "model": "ride_duration_prediction_model",
        "version": "1",
        "prediction": {"ride_duration": duration, "ride_id": ride_id},
        "event_id": event_id,
    }


def cost_prediction(ride_id=256, cost=25.1, event_id="ride_events:shardId-000000000000:1/cost"):
    return {
        "model": "ride_cost_prediction_model",
        "version": "3",
        "prediction": {"ride_cost": cost, "ride_id": ride_id},
        "event_id": event_id,
    }


def tip_prediction(ride_id=256):
    """An event of a model the decision has no rule for: a third consumer, added after it was written."""
    return {
        "model": "ride_tip_prediction_model",
        "version": "1",
        "prediction": {"ride_tip": 3.5, "ride_id": ride_id},
        "event_id": "ride_events:shardId-000000000000:1/tip",
    }


def decided(payloads: list, threshold: float = 30, costly: float = 50) -> tuple[list[dict], list[dict]]:
    """The decision events and dead letters the decision step publishes for ``payloads``."""
    decisions, dead_letters = CollectingPublisher(), CollectingPublisher()
    settings = Settings(long_ride_threshold_minutes=threshold, costly_ride_threshold_usd=costly)
    processor = decision_steps(settings).processor(Publishers(decisions, dead_letters))
    processor.process(KinesisStreamEvent(kinesis_event(payloads)).records, Deadline.after(30))
    return [r.event for r in decisions.take()], [r.event for r in dead_letters.take()]


def test_ride_over_the_threshold_is_flagged_long():
    (decision,), _ = decided([prediction(duration=45.0)])
    assert (decision["decision"], decision["ride_id"], decision["threshold_minutes"]) == ("long_ride", 256, 30.0)


def test_ride_at_or_under_the_threshold_passes_as_normal():
    decisions, _ = decided([prediction(duration=30.0), prediction(duration=5)])
    assert [d["decision"] for d in decisions] == ["normal", "normal"]


def test_decision_carries_the_prediction_and_model():
    (decision,), _ = decided([prediction(ride_id="r-9", duration=12.5)])
    assert decision["predicted_duration"] == 12.5
    assert decision["model"] == {"name": "ride_duration_prediction_model", "version": "1"}
    assert decision["prediction_event_id"] == "ride_events:shardId-000000000000:1"


def test_a_cost_over_its_threshold_is_flagged_costly_and_one_under_it_normal():
    decisions, _ = decided([cost_prediction(cost=80.0), cost_prediction(cost=12.0)], costly=50)
    assert [(d["decision"], d["predicted_cost"], d["threshold_usd"]) for d in decisions] == [
        ("costly_ride", 80.0, 50.0),
        ("normal", 12.0, 50.0),
    ]
    assert decisions[0]["model"] == {"name": "ride_cost_prediction_model", "version": "3"}


def test_a_cost_is_never_held_to_the_duration_threshold():
    (decision,), _ = decided([cost_prediction(cost=40.0)], threshold=30, costly=50)
    assert decision["decision"] == "normal"
    assert "threshold_minutes" not in decision


def test_an_event_of_a_model_without_a_rule_is_decided_no_rule_not_dead_lettered():
    (decision,), dead = decided([tip_prediction()])
    assert dead == []
    assert decision == {
        "event_id": "ride_events:shardId-000000000000:1/tip/decision",
        "prediction_event_id": "ride_events:shardId-000000000000:1/tip",
        "ride_id": 256,
        "decision": "no_rule",
        "model": {"name": "ride_tip_prediction_model", "version": "1"},
    }


@pytest.mark.parametrize(
    "prediction_field",
    [{"ride_id": 256, "ride_duration": 12.0}, {"ride_id": 256, "ride_cost": "a lot"}],
    ids=["no ride_cost", "ride_cost as text"],
)
def test_a_cost_event_without_a_number_for_its_cost_is_dead_lettered_naming_the_field(prediction_field):
    event = {**cost_prediction(), "prediction": prediction_field}
    decisions, (dead,) = decided([event])
    assert decisions == []
    assert (dead["stage"], dead["errors"][0]["field"]) == ("validate", "prediction.ride_cost")
    assert dead["consumer"] == "decision"


def test_repeated_prediction_event_gives_the_same_decision_event_id():
    """Idempotent on event_id: a redelivered prediction is recognisable downstream."""
    (first, again), _ = decided([prediction(), prediction()])
    assert first == again
    assert first["event_id"] == "ride_events:shardId-000000000000:1/decision"


def test_prediction_without_event_id_is_identified_by_its_stream_position():
    event = prediction()
    del event["event_id"]
    (decision,), _ = decided([event])
    assert decision["event_id"] == f"ride_events:shardId-000000000000:{FIRST_SEQUENCE_NUMBER}/decision"


@pytest.fixture
def decide(build_function):
    return build_function("decision", LONG_RIDE_THRESHOLD_MINUTES="30")


@pytest.mark.parametrize(
    "bad",
    [
        b"not json",
        json.dumps({"model": "m", "version": "1"}).encode(),
        json.dumps(prediction(duration="long")).encode(),
        b'{"model": "ride_duration_prediction_model", "version": "1",'
        b' "prediction": {"ride_duration": NaN, "ride_id": 1}}',
        json.dumps(prediction(event_id="e" * 600)).encode(),
        json.dumps(prediction(ride_id="r" * 300)).encode(),
    ],
    ids=["not JSON", "no prediction", "duration as text", "NaN duration", "event_id too long", "ride_id too long"],
)
def test_bad_prediction_event_goes_to_dead_letters_and_the_rest_is_decided(bad):
    decisions, (dead,) = decided([prediction(), bad])
    assert len(decisions) == 1
    assert dead["source"]["sequence_number"] == str(FIRST_SEQUENCE_NUMBER + 1)
    assert dead["reason"]


def test_the_function_publishes_decisions_and_dead_letters_to_their_streams(decide, kinesis):
    good = base64.b64encode(json.dumps(prediction()).encode()).decode()
    response = decide(raw_kinesis_event([good, base64.b64encode(b"not json").decode()]), LocalContext())
    assert response == {"batchItemFailures": []}
    assert [d["ride_id"] for d in read_events(kinesis, DECISIONS)] == [256]
    assert [d["stage"] for d in read_events(kinesis, DEAD_LETTERS)] == ["decode"]


def test_unpublishable_decision_reports_its_sequence_number(decide):
    clock = SimulatedClock()
    decide.publishers.clock = clock
    failing = failing_entries(lambda data, attempt: b'"ride_id":2' in data)
    KinesisFaults(decide.publishers.output.client, [failing], on_call=lambda call: clock.advance(0.05))
    events = [prediction(ride_id=i, event_id=f"e{i}") for i in range(4)]
    response = decide(kinesis_event(events), SimulatedContext(clock, timeout_seconds=30))
    assert response == {"batchItemFailures": [{"itemIdentifier": str(FIRST_SEQUENCE_NUMBER + 2)}]}


def test_test_run_returns_decisions_and_publishes_nothing(build_function, kinesis):
    decide = build_function("decision", TEST_RUN="true")
    response = decide(kinesis_event([prediction(duration=99)]), LocalContext())
    assert [d["decision"] for d in response["decisions"]] == ["long_ride"]
    assert read_stream(kinesis, DECISIONS) == []


def test_predictions_flow_into_decisions_without_the_producer_knowing(build_function, kinesis):
    predict = build_function("prediction")
    rides = [ride_payload(ride_id=i, distance=d) for i, d in enumerate([0.5, 3.0, 120.0])]
    predict(kinesis_event(rides), LocalContext())

    predictions = read_events(kinesis, PREDICTIONS)
    decide = build_function("decision", LONG_RIDE_THRESHOLD_MINUTES="60")
    decide(kinesis_event(predictions), LocalContext())

    decisions = {d["ride_id"]: d for d in read_events(kinesis, DECISIONS)}
    assert set(decisions) == {0, 1, 2}
    for p in predictions:
        decision = decisions[p["prediction"]["ride_id"]]
        assert decision["prediction_event_id"] == p["event_id"]
        assert decision["decision"] == ("long_ride" if p["prediction"]["ride_duration"] > 60 else "normal")


def test_decisions_of_each_outcome_are_counted_in_the_batch_metrics(build_function, capsys):
    decide = build_function("decision", TEST_RUN="true", LONG_RIDE_THRESHOLD_MINUTES="30")
    events = [
        prediction(duration=45),
        prediction(duration=5),
        cost_prediction(cost=99),
        tip_prediction(),
        tip_prediction(),
    ]
    decide(kinesis_event(events), LocalContext())

    (emf,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counts = {name: emf[name] for name in ("Decisions", "LongRide", "Normal", "CostlyRide", "NoRule")}
    assert counts == {"Decisions": [5.0], "LongRide": [1.0], "Normal": [1.0], "CostlyRide": [1.0], "NoRule": [2.0]}


def test_duration_and_cost_predictions_of_the_same_rides_are_each_decided(build_function, kinesis, consumer_models):
    rides = [ride_payload(ride_id=i, distance=d) for i, d in enumerate([0.5, 3.0, 120.0])]
    for model in consumer_models.values():
        build_function("prediction", MODEL_URI=str(model))(kinesis_event(rides), LocalContext())
    predictions = read_events(kinesis, PREDICTIONS)

    build_function("decision")(kinesis_event(predictions), LocalContext())

    decisions = read_events(kinesis, DECISIONS)
    assert sorted((d["model"]["name"], d["ride_id"]) for d in decisions) == sorted(
        (model, ride_id)
        for model in ("ride_duration_prediction_model", "ride_cost_prediction_model")
        for ride_id in (0, 1, 2)
    )
    assert len({d["event_id"] for d in decisions}) == 6
    assert {d["decision"] for d in decisions} <= {"long_ride", "costly_ride", "normal"}
