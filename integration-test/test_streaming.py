"""The deployed template on LocalStack: rides in, each consumer's predictions and their decisions out, nothing lost.

Every test runs on the real event source mappings of the one stack the session
deploys (two model consumers of the ride stream, duration and cost, and the
decision function), so each tags its rides with its own ride_id prefix and
reads the shared streams for those alone.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable

import pytest

from local_stack.aws import MODEL_BUCKET, set_live_environment, upload_model, wait_until
from model_service.kinesis.read import StreamTail
from model_service.schema import validate_ride
from model_service.service import PredictionService
from tests.factories import ride_payload
from tests.streams import put

DELIVERY_TIMEOUT = 90
THROTTLED_SECONDS = 30
LOG_DELAY_SECONDS = 30
"""Longer than the 1.5 s of retries that once gave a batch up; shorter than the function's 60 s timeout."""


def function_log_records(clients, function_name: str, since: float = 0) -> list[dict]:
    """The function's JSON log lines in CloudWatch Logs, from ``since`` (epoch seconds) on."""
    logs = clients("logs")
    group = f"/aws/lambda/{function_name}"
    records = []
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, startTime=int(since * 1000))
    for page in pages:
        for event in page["events"]:
            try:
                records.append(json.loads(event["message"]))
            except ValueError:
                continue
    return records


def batch_log_lines(
    clients, functions: tuple[str, ...], until: Callable[[list[dict]], bool], since: float = 0
) -> list[dict]:
    """The functions' "batch processed" log lines, once ``until`` holds for them or LOG_DELAY_SECONDS have passed.

    A function's log lines reach CloudWatch Logs after the events it published reach their stream.
    """
    deadline = time.monotonic() + LOG_DELAY_SECONDS
    while True:
        batches = [
            r
            for function in functions
            for r in function_log_records(clients, function, since)
            if r.get("message") == "batch processed"
        ]
        if until(batches) or time.monotonic() > deadline:
            return batches
        time.sleep(1)


def collect(tail: StreamTail, wanted: Callable[[dict], bool], count: int, what: str) -> list[dict]:
    """Events from ``tail`` that ``wanted`` picks, once there are at least ``count`` of them."""
    found: list[dict] = []

    def enough() -> bool:
        found.extend(e for e in tail.events() if wanted(e))
        return len(found) >= count

    wait_until(enough, DELIVERY_TIMEOUT, f"{count} {what}", interval=0.5)
    return found


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def tails(clients, stack) -> dict[str, StreamTail]:
    """Readers of the output streams, positioned at their end before the test puts anything."""
    kinesis = clients("kinesis")
    return {
        name: StreamTail(kinesis, stream, position="LATEST")
        for name, stream in (
            ("predictions", stack.predictions_stream),
            ("decisions", stack.decisions_stream),
            ("dead_letters", stack.dead_letter_stream),
        )
    }


CONSUMERS = ("duration", "cost")
MODELS = {"duration": "ride_duration_prediction_model", "cost": "ride_cost_prediction_model"}


@pytest.fixture
def offline(model_dirs) -> dict[str, PredictionService]:
    """Each consumer's model, loaded here as the functions load it."""
    return {consumer: PredictionService.load(str(model_dirs[consumer])) for consumer in CONSUMERS}


def prediction_for(tag: str, consumer: str | None = None) -> Callable[[dict], bool]:
    """Prediction events of the rides tagged ``tag``, of one consumer's model if given."""
    model = MODELS.get(consumer or "")
    return lambda e: (
        str(e.get("prediction", {}).get("ride_id", "")).startswith(tag) and (model is None or e.get("model") == model)
    )


def consumer_of(event: dict) -> str:
    return event["event_id"].rpartition("/")[2]


def test_each_ride_becomes_one_prediction_per_consumer_with_the_offline_values_and_versions(
    localstack, stack, tails, tag, offline
):
    for tail in tails.values():
        tail.poll()
    rides = [ride_payload(f"{tag}-{i}", pu=10 + i, do=50 + i, distance=0.5 + i) for i in range(20)]
    put(localstack.endpoint, stack.input_stream, [json.dumps(r).encode() for r in rides])

    events = collect(tails["predictions"], prediction_for(tag), 2 * len(rides), "predictions of both consumers")
    for consumer, model in offline.items():
        mine = [e for e in events if consumer_of(e) == consumer]
        by_ride = {e["prediction"]["ride_id"]: e for e in mine}
        assert set(by_ride) == {r["ride_id"] for r in rides}, consumer
        expected = model.predict([validate_ride(r["ride"]) for r in rides])
        field = model.target.event_field
        assert [by_ride[r["ride_id"]]["prediction"][field] for r in rides] == pytest.approx(expected)
        assert {(e["model"], e["version"]) for e in mine} == {(MODELS[consumer], model.version)}


POISON = {
    "not JSON": b"{'ride': 130}",
    "not UTF-8": b"\xff\xfe\xfd",
    "JSON array": b"[130, 205, 3.66]",
    "missing ride_id": json.dumps({"ride": ride_payload("x")["ride"]}).encode(),
    "string location": json.dumps(ride_payload("x", pu="130")).encode(),
    "negative distance": json.dumps(ride_payload("x", distance=-1)).encode(),
    "NaN distance": b'{"ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": NaN}, "ride_id": "x"}',
}


def test_poison_records_are_dead_lettered_and_do_not_block_the_shard(localstack, stack, tails, tag):
    for tail in tails.values():
        tail.poll()
    bad = {kind: payload.replace(b'"x"', json.dumps(f"{tag}-{kind}").encode()) for kind, payload in POISON.items()}
    payloads = [
        json.dumps(ride_payload(f"{tag}-first")).encode(),
        *bad.values(),
        json.dumps(ride_payload(f"{tag}-last")).encode(),
    ]
    put(localstack.endpoint, stack.input_stream, payloads)

    predictions = collect(tails["predictions"], prediction_for(tag), 4, "predictions around the poison")
    assert sorted((consumer_of(e), e["prediction"]["ride_id"]) for e in predictions) == sorted(
        (consumer, f"{tag}-{ride}") for consumer in CONSUMERS for ride in ("first", "last")
    )

    raw = {base64.b64encode(p).decode(): kind for kind, p in bad.items()}
    dead = collect(tails["dead_letters"], lambda e: e.get("raw_data") in raw, 2 * len(bad), "dead letters")
    assert sorted((e["consumer"], raw[e["raw_data"]]) for e in dead) == sorted(
        (consumer, kind) for consumer in CONSUMERS for kind in bad
    ), "each consumer refuses each poison record, under its own event_id"
    assert len({e["event_id"] for e in dead}) == 2 * len(bad)
    reasons = {raw[e["raw_data"]]: e for e in dead if e["consumer"] == "cost"}
    assert reasons["not JSON"]["stage"] == "decode"
    assert reasons["missing ride_id"]["reason"] == "ride_id: Field required"
    assert reasons["negative distance"]["errors"][0]["field"] == "ride.trip_distance"
    assert reasons["NaN distance"]["errors"][0]["field"] == "ride.trip_distance"
    assert all(e["source"]["stream_name"] == stack.input_stream for e in dead)


def test_decision_step_decides_every_prediction_of_each_model_by_its_rule(localstack, stack, tails, tag):
    for tail in tails.values():
        tail.poll()
    rides = [ride_payload(f"{tag}-short", distance=0.5), ride_payload(f"{tag}-long", pu=1, do=265, distance=400)]
    put(localstack.endpoint, stack.input_stream, [json.dumps(r).encode() for r in rides])

    predictions = collect(tails["predictions"], prediction_for(tag), 4, "predictions")
    decisions = collect(tails["decisions"], lambda e: str(e.get("ride_id", "")).startswith(tag), 4, "decisions")
    by_prediction = {d["prediction_event_id"]: d for d in decisions}
    for prediction in predictions:
        decision = by_prediction[prediction["event_id"]]
        if consumer_of(prediction) == "duration":
            expected = "long_ride" if prediction["prediction"]["ride_duration"] > 45 else "normal"
        else:
            expected = "costly_ride" if prediction["prediction"]["ride_cost"] > 50 else "normal"
        assert decision["decision"] == expected
    assert {d["decision"] for d in decisions if d["ride_id"] == f"{tag}-long"} == {"long_ride", "costly_ride"}


def test_throttled_kinesis_loses_no_ride_and_repeats_are_detectable(clients, stack, tails, tag, localstack):
    for tail in tails.values():
        tail.poll()
    rides = [ride_payload(f"{tag}-{i}", distance=1 + i % 10) for i in range(60)]
    localstack.set_config("KINESIS_ERROR_PROBABILITY", 0.5)
    try:
        for start in range(0, len(rides), 10):  # several batches, so both functions publish many times
            put(localstack.endpoint, stack.input_stream, [json.dumps(r).encode() for r in rides[start : start + 10]])
            time.sleep(1.5)
        events = collect(tails["predictions"], prediction_for(tag), 2 * len(rides), "predictions under throttling")
        decisions = collect(
            tails["decisions"], lambda e: str(e.get("ride_id", "")).startswith(tag), 2 * len(rides), "decisions"
        )
    finally:
        localstack.set_config("KINESIS_ERROR_PROBABILITY", 0.0)

    for consumer in CONSUMERS:
        assert {e["prediction"]["ride_id"] for e in events if consumer_of(e) == consumer} == {
            r["ride_id"] for r in rides
        }
    assert len({e["event_id"] for e in events}) == 2 * len(rides)
    assert one_event_id_per_ride(events)
    assert len({d["event_id"] for d in decisions}) == 2 * len(rides)
    batches = batch_log_lines(
        clients,
        stack.stream_functions,
        until=lambda batches: sum(b["PublishRetries"] for b in batches) > 0,
    )
    # LocalStack refuses a whole PutRecords call with KINESIS_ERROR_PROBABILITY, so the
    # producer's six calls all go through at once in one run of 64; the functions' dozen
    # calls (predictions and decisions, each batch) prove the injection was on.
    assert sum(b["PublishRetries"] for b in batches) > 0, f"the functions re-sent throttled entries: {batches}"


def one_event_id_per_ride(events: list[dict]) -> bool:
    """Each event_id names one ride, however often it was delivered."""
    rides_by_event_id: dict[str, set] = {}
    for e in events:
        rides_by_event_id.setdefault(e["event_id"], set()).add(e["prediction"]["ride_id"])
    return all(len(rides) == 1 for rides in rides_by_event_id.values())


def test_a_throttling_window_of_30_seconds_is_waited_out_within_the_invocation(clients, stack, tails, tag, localstack):
    """Every PutRecords entry refused for 30 s, from before the function first publishes the rides."""
    for tail in tails.values():
        tail.poll()
    rides = [ride_payload(f"{tag}-{i}", distance=1 + i) for i in range(20)]
    started = time.time()
    put(localstack.endpoint, stack.input_stream, [json.dumps(r).encode() for r in rides])
    # The rides reach the function a second or more from now (a shard poll); every publish from now is refused.
    localstack.set_config("KINESIS_ERROR_PROBABILITY", 1.0)
    try:
        time.sleep(THROTTLED_SECONDS)
        assert not [e for e in tails["predictions"].events() if prediction_for(tag)(e)], "nothing got through"
    finally:
        localstack.set_config("KINESIS_ERROR_PROBABILITY", 0.0)
    events = collect(tails["predictions"], prediction_for(tag), 2 * len(rides), "predictions after the throttling")

    for consumer in CONSUMERS:
        assert {e["prediction"]["ride_id"] for e in events if consumer_of(e) == consumer} == {
            r["ride_id"] for r in rides
        }
    assert one_event_id_per_ride(events)
    functions = (stack.duration_function, stack.cost_function)
    batches = [
        b
        for b in batch_log_lines(
            clients,
            functions,
            since=started,
            until=lambda batches: sum(b["Predictions"] >= len(rides) for b in batches) >= len(functions),
        )
        if b["Predictions"] >= len(rides)
    ]
    assert {b["service"] for b in batches} == {"ride-duration-prediction", "ride-cost-prediction"}, (
        "one invocation of each consumer published every ride"
    )
    assert all(b["PublishRetries"] > 0 for b in batches)
    assert all(b["batch_item_failures"] == [] for b in batches), "each waited the throttling out"


def test_a_model_that_cannot_load_fails_its_consumer_clearly_loses_no_ride_and_stops_no_other_consumer(
    clients, localstack, stack, tails, tag, model_dirs
):
    """Runs last in this file: while the duration model is broken, its shard waits; the cost consumer goes on."""
    lam = clients("lambda")
    function = stack.duration_function
    variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    broken_prefix = f"broken-{tag}"
    broken_uri = f"s3://{MODEL_BUCKET}/{broken_prefix}/ride-duration/model"
    set_live_environment(clients, function, {**variables, "MODEL_URI": broken_uri})
    try:
        for tail in tails.values():
            tail.poll()
        rides = [ride_payload(f"{tag}-{i}") for i in range(5)]
        put(localstack.endpoint, stack.input_stream, [json.dumps(r).encode() for r in rides])

        response = lam.invoke(FunctionName=function, Qualifier="live", Payload=json.dumps({"Records": []}))
        error = json.loads(response["Payload"].read())
        assert response.get("FunctionError")
        assert broken_uri in error["errorMessage"]
        assert "Cannot load the model" in error["errorMessage"] or "no objects under" in error["errorMessage"]
        costs = collect(tails["predictions"], prediction_for(tag, "cost"), len(rides), "cost predictions meanwhile")
        assert {e["prediction"]["ride_id"] for e in costs} == {r["ride_id"] for r in rides}
        assert not [e for e in tails["predictions"].events() if prediction_for(tag, "duration")(e)]

        upload_model(clients, model_dirs["duration"], "ride-duration", prefix=broken_prefix)
        events = collect(
            tails["predictions"], prediction_for(tag, "duration"), len(rides), "predictions once the model is fixed"
        )
        assert {e["prediction"]["ride_id"] for e in events} == {r["ride_id"] for r in rides}
    finally:
        set_live_environment(clients, function, variables)
