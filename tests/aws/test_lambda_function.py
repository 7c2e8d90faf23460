"""The Lambda handler end to end on moto's Kinesis: no record lost, no shard blocked."""

import base64
import json
import re

import pytest

from model_service.errors import ModelLoadError
from model_service.schema import validate_ride
from model_service.service import PredictionService
from stream_tools.local_invoke import FIRST_SEQUENCE_NUMBER, LocalContext
from tests.conftest import DEAD_LETTERS, PREDICTIONS, shared_path
from tests.factories import kinesis_event, raw_kinesis_event, ride_payload
from tests.faults import KinesisFaults, failing_entries
from tests.lambda_simulation import SimulatedClock, SimulatedContext
from tests.streams import read_events
from tests.streams import read_stream as read_stream_bytes

BAD_RECORDS = {
    "not base64": "%%% not base64 %%%",
    "not UTF-8": base64.b64encode(b"\xff\xfe").decode(),
    "not JSON": base64.b64encode(b"{'ride': 1}").decode(),
    "JSON but not an object": base64.b64encode(b"[130, 205, 3.66]").decode(),
    "missing ride_id": base64.b64encode(json.dumps({"ride": ride_payload()["ride"]}).encode()).decode(),
    "mistyped location": base64.b64encode(json.dumps(ride_payload(pu="130")).encode()).decode(),
    "NaN distance": base64.b64encode(
        b'{"ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": NaN}, "ride_id": 9}'
    ).decode(),
    "negative distance": base64.b64encode(json.dumps(ride_payload(distance=-2)).encode()).decode(),
    "huge distance": base64.b64encode(json.dumps(ride_payload(distance=42_000)).encode()).decode(),
}


RIDE = ride_payload()["ride"]


def encoded(payload) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


@pytest.fixture
def load_handler(build_function):
    return lambda **env: build_function("prediction", **env)


@pytest.fixture
def handler(load_handler):
    return load_handler()


@pytest.fixture
def clock(handler) -> SimulatedClock:
    """The handler's publishers on simulated time, so waiting for a deadline takes no real time."""
    clock = SimulatedClock()
    handler.publishers.clock = clock
    return clock


@pytest.fixture
def faults(handler, clock) -> KinesisFaults:
    return KinesisFaults(handler.publishers.output.client, on_call=lambda call: clock.advance(0.05))


def test_each_ride_becomes_one_prediction_event_on_the_output_stream(handler, kinesis, mlflow_model_dir):
    rides = [ride_payload(ride_id=i, pu=10 + i, do=50, distance=1.5 * i) for i in range(1, 6)]
    response = handler(kinesis_event(rides), LocalContext())

    assert response == {"batchItemFailures": []}
    events = sorted(read_events(kinesis, PREDICTIONS), key=lambda e: e["prediction"]["ride_id"])
    offline = PredictionService.load(str(mlflow_model_dir)).predict([validate_ride(r["ride"]) for r in rides])
    assert [e["prediction"]["ride_id"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["prediction"]["ride_duration"] for e in events] == pytest.approx(offline)


def test_prediction_event_keeps_the_course_shape_and_adds_event_id(handler, kinesis):
    handler(kinesis_event([ride_payload()]), LocalContext())
    (event,) = read_events(kinesis, PREDICTIONS)
    assert set(event) == {"model", "version", "prediction", "event_id"}
    assert event["model"] == "ride_duration_prediction_model"
    assert event["version"] == handler.service.version
    assert set(event["prediction"]) == {"ride_duration", "ride_id"}
    assert event["event_id"].endswith(f":{FIRST_SEQUENCE_NUMBER}/duration")


def test_a_cost_model_behind_the_same_function_publishes_cost_events_in_the_courses_shape(
    load_handler, kinesis, cost_model_dir
):
    handler = load_handler(MODEL_URI=str(cost_model_dir))
    handler(kinesis_event([ride_payload(), ride_payload(pu="bad")]), LocalContext())

    (event,) = read_events(kinesis, PREDICTIONS)
    assert event["model"] == "ride_cost_prediction_model"
    assert set(event["prediction"]) == {"ride_cost", "ride_id"}
    assert event["prediction"]["ride_cost"] == pytest.approx(handler.service.predict([validate_ride(RIDE)])[0])
    assert event["event_id"] == f"ride_events:shardId-000000000000:{FIRST_SEQUENCE_NUMBER}/cost"
    (dead,) = read_events(kinesis, DEAD_LETTERS)
    assert (dead["consumer"], dead["event_id"]) == (
        "cost",
        f"ride_events:shardId-000000000000:{FIRST_SEQUENCE_NUMBER + 1}/cost",
    )


def test_consumer_name_overrides_the_models_target_in_event_ids_and_dead_letters(load_handler, kinesis):
    handler = load_handler(CONSUMER_NAME="duration-eu")
    handler(kinesis_event([ride_payload(), ride_payload(pu="bad")]), LocalContext())

    assert read_events(kinesis, PREDICTIONS)[0]["event_id"].endswith("/duration-eu")
    assert read_events(kinesis, DEAD_LETTERS)[0]["consumer"] == "duration-eu"


def test_prediction_is_partitioned_by_ride_id(handler, faults):
    handler(kinesis_event([ride_payload(ride_id="r-1"), ride_payload(ride_id=7)]), LocalContext())
    (call,) = faults.calls
    assert call.partition_keys == ["r-1", "7"]


def test_a_ride_id_longer_than_256_characters_is_dead_lettered_and_the_rest_predicted(handler, kinesis):
    """Kinesis refuses a partition key over 256 characters: such a ride must never reach the publisher."""
    hostile = "x" * 257
    event = kinesis_event([ride_payload(ride_id=1), ride_payload(ride_id=hostile), ride_payload(ride_id=2)])
    response = handler(event, LocalContext())

    assert response == {"batchItemFailures": []}
    assert sorted(e["prediction"]["ride_id"] for e in read_events(kinesis, PREDICTIONS)) == [1, 2]
    (dead,) = read_events(kinesis, DEAD_LETTERS)
    assert (dead["stage"], dead["errors"][0]["field"]) == ("validate", "ride_id")
    assert "at most 256 characters" in dead["reason"]


@pytest.mark.parametrize("kind", list(BAD_RECORDS))
def test_bad_record_goes_to_dead_letters_while_the_rest_is_predicted(handler, kinesis, kind):
    event = raw_kinesis_event([encoded(ride_payload(ride_id=1)), BAD_RECORDS[kind], encoded(ride_payload(ride_id=2))])
    response = handler(event, LocalContext())

    assert response == {"batchItemFailures": []}
    assert sorted(e["prediction"]["ride_id"] for e in read_events(kinesis, PREDICTIONS)) == [1, 2]
    (dead,) = read_events(kinesis, DEAD_LETTERS)
    assert dead["source"]["sequence_number"] == str(FIRST_SEQUENCE_NUMBER + 1)
    assert dead["raw_data"] == BAD_RECORDS[kind]
    assert dead["reason"]


def test_every_bad_kind_in_one_batch_is_accounted_for(handler, kinesis):
    event = raw_kinesis_event([*BAD_RECORDS.values(), encoded(ride_payload())])
    handler(event, LocalContext())
    dead = read_events(kinesis, DEAD_LETTERS)
    assert len(dead) == len(BAD_RECORDS)
    assert len(read_events(kinesis, PREDICTIONS)) == 1


def test_dead_letter_says_which_field_and_why(handler, kinesis):
    handler(raw_kinesis_event([BAD_RECORDS["negative distance"]]), LocalContext())
    (dead,) = read_events(kinesis, DEAD_LETTERS)
    assert dead["stage"] == "validate"
    assert dead["errors"][0]["field"] == "ride.trip_distance"
    assert dead["reason"].startswith("ride.trip_distance: Input should be greater than or equal to 0")
    assert dead["source"]["partition_key"] == "0"
    assert dead["event_id"].endswith(f":{FIRST_SEQUENCE_NUMBER}/duration")


def test_test_run_returns_the_events_and_publishes_nothing(load_handler, kinesis):
    handler = load_handler(TEST_RUN="true")
    event = raw_kinesis_event([encoded(ride_payload(ride_id=256)), BAD_RECORDS["not JSON"]])
    response = handler(event, LocalContext())

    assert [p["prediction"]["ride_id"] for p in response["predictions"]] == [256]
    assert len(response["dead_letters"]) == 1
    assert response["batchItemFailures"] == []
    assert read_events(kinesis, PREDICTIONS) == read_events(kinesis, DEAD_LETTERS) == []


def test_test_run_returns_each_invocations_own_events(load_handler):
    handler = load_handler(TEST_RUN="true")
    handler(kinesis_event([ride_payload(ride_id=1)]), LocalContext())
    response = handler(kinesis_event([ride_payload(ride_id=2)]), LocalContext())
    assert [p["prediction"]["ride_id"] for p in response["predictions"]] == [2]


@pytest.mark.shared_data
def test_course_event_through_the_course_model_gives_the_course_prediction(load_handler):
    handler = load_handler(MODEL_URI=str(shared_path("models/lin_reg.bin")), MODEL_ALLOW_PICKLE="true", TEST_RUN="true")
    event = json.loads(shared_path("events/course-kinesis-event.json").read_text())
    (prediction,) = handler(event, LocalContext())["predictions"]
    assert prediction["prediction"] == {"ride_duration": pytest.approx(12.7855, abs=1e-4), "ride_id": 256}


def test_throttled_entries_are_retried_until_published(handler, kinesis, faults):
    faults.rules.append(failing_entries(lambda data, attempt: attempt <= 2))
    response = handler(kinesis_event([ride_payload(ride_id=i) for i in range(4)]), LocalContext())
    assert response == {"batchItemFailures": []}
    assert len(read_events(kinesis, PREDICTIONS)) == 4


def test_predictions_unpublished_by_the_deadline_report_the_lowest_sequence_number(handler, kinesis, clock, faults):
    doomed = {b'"ride_id":3}', b'"ride_id":5}'}
    faults.rules.append(failing_entries(lambda data, attempt: any(d in data for d in doomed)))
    context = SimulatedContext(clock, timeout_seconds=60)
    response = handler(kinesis_event([ride_payload(ride_id=i) for i in range(7)]), context)

    assert response == {"batchItemFailures": [{"itemIdentifier": str(FIRST_SEQUENCE_NUMBER + 3)}]}
    assert sorted(e["prediction"]["ride_id"] for e in read_events(kinesis, PREDICTIONS)) == [0, 1, 2, 4, 6]
    assert 0 < context.get_remaining_time_in_millis() <= 8_000, "it retried until the deadline, and answered in time"


def test_unpublishable_dead_letter_is_reported_so_it_is_not_lost(handler, clock, faults):
    faults.rules.append(failing_entries(lambda data, attempt: True, stream=DEAD_LETTERS))
    event = raw_kinesis_event([encoded(ride_payload()), encoded(ride_payload()), BAD_RECORDS["not JSON"]])
    response = handler(event, SimulatedContext(clock, timeout_seconds=60))
    assert response == {"batchItemFailures": [{"itemIdentifier": str(FIRST_SEQUENCE_NUMBER + 2)}]}


def test_a_failing_model_fails_the_whole_batch(handler, monkeypatch):
    def broken(rides):
        raise MemoryError("model blew up")

    monkeypatch.setattr(handler.service, "predict", broken)
    with pytest.raises(MemoryError):
        handler(kinesis_event([ride_payload()]), LocalContext())


def test_a_model_that_cannot_load_fails_the_container_start_naming_the_uri(load_handler, tmp_path):
    with pytest.raises(ModelLoadError, match=re.escape("missing/model.bin")):
        load_handler(MODEL_URI=str(tmp_path / "missing" / "model.bin"))


def test_batch_metrics_are_emitted_as_cloudwatch_emf(handler, capsys):
    handler(raw_kinesis_event([encoded(ride_payload()), BAD_RECORDS["not JSON"]]), LocalContext())
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (metrics,) = emf
    assert (metrics["RecordsIn"], metrics["Predictions"], metrics["DeadLetters"]) == ([2.0], [1.0], [1.0])
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "RideDuration"


def test_empty_batch_is_fine(handler):
    assert handler({"Records": []}, LocalContext()) == {"batchItemFailures": []}


def test_oversized_poison_record_is_dead_lettered_with_its_payload_truncated(handler, kinesis):
    huge = base64.b64encode(b"x" * 900_000).decode()
    response = handler(raw_kinesis_event([huge]), LocalContext())
    assert response == {"batchItemFailures": []}
    (dead,) = read_events(kinesis, DEAD_LETTERS)
    assert dead["raw_data_truncated"] is True
    assert huge.startswith(dead["raw_data"])
    assert len(dead["raw_data"]) < len(huge)


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps(
            {"ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": "é" * 500_000}, "ride_id": 1},
            ensure_ascii=False,
        ),
        json.dumps(
            {"ride": {"PULocationID": "😀" * 250_000, "DOLocationID": 2, "trip_distance": 1}, "ride_id": 1},
            ensure_ascii=False,
        ),
        "😀" * 262_000,
    ],
    ids=["non-ASCII distance", "emoji zone id", "emoji, not JSON"],
)
def test_a_1_mib_record_of_non_ascii_text_is_dead_lettered_within_the_record_limit(handler, kinesis, payload):
    data = payload.encode()
    assert 1_000_000 < len(data) <= 1024 * 1024
    response = handler(kinesis_event([data]), LocalContext())

    assert response == {"batchItemFailures": []}
    (raw,) = read_stream_bytes(kinesis, DEAD_LETTERS)
    assert len(raw) + len("0") <= 1024 * 1024
    dead = json.loads(raw)
    assert dead["raw_data_truncated"] is True
    assert base64.b64encode(data).decode().startswith(dead["raw_data"])
    assert len(dead["reason"]) < 1000, "the bad value is quoted, not repeated whole"


def test_a_function_is_named_in_its_logs_and_metrics_for_what_its_model_predicts(load_handler, cost_model_dir):
    assert load_handler().logger.service == "ride-duration-prediction"
    assert load_handler(MODEL_URI=str(cost_model_dir)).logger.service == "ride-cost-prediction"
    assert load_handler(POWERTOOLS_SERVICE_NAME="mine").logger.service == "mine"
