"""Properties: whatever arrives, the handler never crashes, accounts for every record, makes publishable records."""

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_service.config import Settings
from model_service.kinesis.function import prediction_function
from model_service.kinesis.records import MAX_RECORD_BYTES, encode_event, record_size
from model_service.schema import MAX_RIDE_ID_CHARS, partition_key_length
from stream_tools.local_invoke import LocalContext
from tests.factories import kinesis_event, raw_kinesis_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
long_text = st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=4), st.integers(0, 200_000))
"""Text of any size, up to hundreds of thousands of characters (non-ASCII included), cheaply."""
any_size = json_values | long_text | st.integers(min_value=-(10**300), max_value=10**300)
near_rides = st.fixed_dictionaries(
    {
        "ride": st.fixed_dictionaries(
            {
                "PULocationID": st.integers(-5, 300) | any_size,
                "DOLocationID": st.integers(-5, 300) | any_size,
                "trip_distance": st.floats(allow_nan=True, allow_infinity=True) | any_size,
            }
        )
        | json_values,
        "ride_id": st.integers() | st.text(max_size=6) | st.text(min_size=250, max_size=300) | any_size,
    }
)
payloads = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_rides.map(lambda v: json.dumps(v).encode()),
    near_rides.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
)


@pytest.fixture(scope="module")
def handler(mlflow_model_dir):
    return prediction_function(Settings.from_env({"MODEL_URI": str(mlflow_model_dir), "TEST_RUN": "true"}))


def accounted_ids(response) -> list[str]:
    return [e["event_id"] for e in response["predictions"]] + [e["event_id"] for e in response["dead_letters"]]


def assert_publishable(response) -> None:
    """Each event fits one Kinesis record with its partition key, and each key fits Kinesis' limit."""
    for prediction in response["predictions"]:
        key = str(prediction["prediction"]["ride_id"])
        assert 1 <= partition_key_length(key) <= MAX_RIDE_ID_CHARS
        assert record_size(encode_event(prediction), key) <= MAX_RECORD_BYTES
    for dead_letter in response["dead_letters"]:
        assert record_size(encode_event(dead_letter), dead_letter["source"]["partition_key"]) <= MAX_RECORD_BYTES


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(payloads, min_size=1, max_size=20))
def test_any_record_bytes_end_as_a_publishable_prediction_or_dead_letter(handler, batch):
    event = kinesis_event(batch)
    response = handler(event, LocalContext())
    expected = [f"ride_events:{r['eventID']}/duration" for r in event["Records"]]
    assert sorted(accounted_ids(response)) == sorted(expected)
    assert_publishable(response)
    json.dumps(response, allow_nan=False)  # what Lambda returns must be strict JSON


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40) | long_text, min_size=1, max_size=10))
def test_any_data_field_text_ends_as_a_publishable_prediction_or_dead_letter(handler, datas):
    event = raw_kinesis_event(datas)
    response = handler(event, LocalContext())
    assert len(accounted_ids(response)) == len(datas)
    assert_publishable(response)


def test_valid_rides_among_garbage_are_all_predicted(handler):
    garbage = base64.b64encode(b"\x00garbage").decode()
    ride = base64.b64encode(b'{"ride":{"PULocationID":1,"DOLocationID":2,"trip_distance":1.0},"ride_id":1}').decode()
    response = handler(raw_kinesis_event([garbage, ride, garbage, ride]), LocalContext())
    assert (len(response["predictions"]), len(response["dead_letters"])) == (2, 2)
