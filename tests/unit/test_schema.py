"""The ride event schema: what is accepted, and that each rejection names its field and reason."""

import json
import math

import pytest

from model_service.errors import SchemaViolation
from model_service.schema import (
    MAX_QUOTED_CHARS,
    MAX_SAFE_INTEGER,
    MAX_TRIP_DISTANCE_MILES,
    validate_ride,
    validate_ride_event,
)
from tests.factories import ride_payload


def rejection(payload) -> dict[str, str]:
    with pytest.raises(SchemaViolation) as raised:
        validate_ride_event(payload)
    assert len(raised.value.errors) == 1, raised.value.errors
    return raised.value.errors[0]


def test_course_ride_event_is_valid():
    event = validate_ride_event(ride_payload())
    assert event == {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 256}


def test_string_ride_id_is_valid():
    assert validate_ride_event(ride_payload(ride_id="ride-42"))["ride_id"] == "ride-42"


def test_integer_distance_is_valid_as_float():
    assert validate_ride_event(ride_payload(distance=4))["ride"]["trip_distance"] == 4.0


def test_unknown_extra_fields_are_ignored():
    payload = ride_payload()
    payload["source"] = "app"
    payload["ride"]["passenger_count"] = 2
    event = validate_ride_event(payload)
    assert event == validate_ride_event(ride_payload())
    assert "passenger_count" not in event["ride"]


def test_missing_ride_id_is_named():
    payload = ride_payload()
    del payload["ride_id"]
    assert rejection(payload) == {"field": "ride_id", "reason": "Field required"}


def test_empty_ride_id_is_rejected():
    assert rejection(ride_payload(ride_id="  "))["field"] == "ride_id"


def test_boolean_ride_id_is_rejected():
    assert rejection(ride_payload(ride_id=True))["field"] == "ride_id"


def test_missing_ride_object_is_named():
    assert rejection({"ride_id": 1}) == {"field": "ride", "reason": "Field required"}


def test_missing_pickup_location_is_named():
    payload = ride_payload()
    del payload["ride"]["PULocationID"]
    assert rejection(payload) == {"field": "ride.PULocationID", "reason": "Field required"}


def test_string_location_id_is_rejected_with_its_value():
    error = rejection(ride_payload(pu="130"))
    assert error["field"] == "ride.PULocationID"
    assert "'130'" in error["reason"]


def test_float_location_id_is_rejected():
    assert rejection(ride_payload(do=205.5))["field"] == "ride.DOLocationID"


@pytest.mark.parametrize("zone", [0, -1, 266, 10_000])
def test_location_id_outside_tlc_zones_is_rejected(zone):
    assert rejection(ride_payload(pu=zone))["field"] == "ride.PULocationID"


def test_negative_distance_is_rejected_with_reason():
    error = rejection(ride_payload(distance=-1.5))
    assert error["field"] == "ride.trip_distance"
    assert "greater than or equal to 0" in error["reason"]


def test_huge_distance_is_rejected():
    error = rejection(ride_payload(distance=MAX_TRIP_DISTANCE_MILES + 1))
    assert error["field"] == "ride.trip_distance"
    assert "less than or equal to" in error["reason"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_distance_is_rejected(value):
    error = rejection(ride_payload(distance=value))
    assert error["field"] == "ride.trip_distance"
    assert "finite" in error["reason"]


def test_string_distance_is_rejected():
    assert rejection(ride_payload(distance="3.66"))["field"] == "ride.trip_distance"


def test_json_array_is_rejected_as_a_whole_record():
    assert rejection([1, 2, 3])["field"] == "<record>"


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(SchemaViolation) as raised:
        validate_ride_event({"ride": {"PULocationID": "x", "trip_distance": -1}})
    fields = {e["field"] for e in raised.value.errors}
    assert fields == {"ride_id", "ride.PULocationID", "ride.DOLocationID", "ride.trip_distance"}
    assert "ride.trip_distance:" in str(raised.value)


def test_bare_ride_validates_without_event_wrapper():
    assert validate_ride({"PULocationID": 1, "DOLocationID": 2, "trip_distance": 0})["trip_distance"] == 0.0


def test_a_ride_id_of_256_characters_is_valid():
    assert validate_ride_event(ride_payload(ride_id="r" * 256))["ride_id"] == "r" * 256


def test_a_ride_id_longer_than_a_kinesis_partition_key_is_rejected():
    error = rejection(ride_payload(ride_id="r" * 257))
    assert error["field"] == "ride_id"
    assert error["reason"].startswith("Input should have at most 256 characters (a Kinesis partition key), not 257")


def test_ride_id_characters_are_counted_as_kinesis_may_count_them():
    """An emoji is one character but two UTF-16 code units; the stricter count keeps every key within the limit."""
    assert validate_ride_event(ride_payload(ride_id="😀" * 128))["ride_id"] == "😀" * 128
    assert rejection(ride_payload(ride_id="😀" * 129))["field"] == "ride_id"


def test_surrounding_blanks_do_not_count_towards_the_ride_id_limit():
    assert validate_ride_event(ride_payload(ride_id=f"  {'r' * 256}  "))["ride_id"] == "r" * 256


@pytest.mark.parametrize("ride_id", [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0])
def test_an_integer_ride_id_every_json_consumer_reads_exactly_is_valid(ride_id):
    assert validate_ride_event(ride_payload(ride_id=ride_id))["ride_id"] == ride_id


@pytest.mark.parametrize("ride_id", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 10**300])
def test_an_integer_ride_id_beyond_2_to_the_53_is_rejected(ride_id):
    error = rejection(ride_payload(ride_id=ride_id))
    assert error["field"] == "ride_id"
    assert "every JSON consumer reads exactly" in error["reason"]


def test_a_huge_bad_value_is_quoted_in_a_few_hundred_characters():
    error = rejection(ride_payload(distance="é" * 1_000_000))
    assert error["field"] == "ride.trip_distance"
    assert len(error["reason"]) < 2 * MAX_QUOTED_CHARS


def test_a_deeply_nested_bad_value_is_quoted_in_a_few_hundred_characters():
    value: object = ["x" * 10_000] * 100
    for _ in range(50):
        value = [value, {"k": "y" * 1000}]
    assert len(rejection(ride_payload(pu=json.loads(json.dumps(value))))["reason"]) < 2 * MAX_QUOTED_CHARS
