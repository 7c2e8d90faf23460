"""Property: whatever bytes arrive, the handler never crashes and accounts for every record."""

import base64
import importlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_tools.local_invoke import LocalContext
from tests.factories import kinesis_event, raw_kinesis_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
near_rides = st.fixed_dictionaries(
    {
        "ride": st.fixed_dictionaries(
            {
                "PULocationID": st.integers(-5, 300) | json_values,
                "DOLocationID": st.integers(-5, 300) | json_values,
                "trip_distance": st.floats(allow_nan=True, allow_infinity=True) | json_values,
            }
        )
        | json_values,
        "ride_id": st.integers() | st.text(max_size=6) | json_values,
    }
)
payloads = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_rides.map(lambda v: json.dumps(v).encode()),
)


@pytest.fixture(scope="module")
def handler(model_bin):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_URI", str(model_bin))
        patch.setenv("TEST_RUN", "true")
        import lambda_function

        yield importlib.reload(lambda_function)


def accounted_ids(response) -> list[str]:
    return [e["event_id"] for e in response["predictions"]] + [e["event_id"] for e in response["dead_letters"]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(payloads, min_size=1, max_size=20))
def test_any_record_bytes_end_as_a_prediction_or_a_dead_letter(handler, batch):
    event = kinesis_event(batch)
    response = handler.lambda_handler(event, LocalContext())
    expected = [f"ride_events:{r['eventID']}" for r in event["Records"]]
    assert sorted(accounted_ids(response)) == sorted(expected)
    json.dumps(response, allow_nan=False)  # what Lambda returns must be strict JSON


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=10))
def test_any_data_field_text_ends_as_a_prediction_or_a_dead_letter(handler, datas):
    event = raw_kinesis_event(datas)
    response = handler.lambda_handler(event, LocalContext())
    assert len(accounted_ids(response)) == len(datas)


def test_valid_rides_among_garbage_are_all_predicted(handler):
    garbage = base64.b64encode(b"\x00garbage").decode()
    ride = base64.b64encode(b'{"ride":{"PULocationID":1,"DOLocationID":2,"trip_distance":1.0},"ride_id":1}').decode()
    response = handler.lambda_handler(raw_kinesis_event([garbage, ride, garbage, ride]), LocalContext())
    assert (len(response["predictions"]), len(response["dead_letters"])) == (2, 2)
