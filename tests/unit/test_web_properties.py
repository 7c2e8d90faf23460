"""Property: the web validates a body's rides in one pydantic call, and judges them as the schema judges each ride.

The oracle is the rule the web service documents, applied with the schema's own
public functions one ride at a time: a body is a ride or a list of rides; an
object with a ``ride`` key is a ride event; a bare ride's ``ride_id`` is judged
by the event schema's rule; the text is parsed by the schema's JSON parser.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from model_service.config import Settings
from model_service.errors import InvalidJson, InvalidRides, SchemaViolation
from model_service.schema import Ride, RideId, validate_body_rides, validate_json, validate_ride, validate_ride_event
from model_service.service import RideModels
from model_service.web import create_app

ANY_JSON: TypeAdapter[Any] = TypeAdapter(Any)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
valid_rides = st.fixed_dictionaries(
    {"PULocationID": st.integers(1, 265), "DOLocationID": st.integers(1, 265), "trip_distance": st.floats(0, 500)},
    optional={"ride_id": st.integers() | st.text(min_size=1, max_size=4), "extra": json_values},
)
NEAR_MISSES = {
    "PULocationID": st.sampled_from([0, 266, -1, 2**70, 130.0, True, "130", None]) | json_values,
    "DOLocationID": st.sampled_from([0, 266, 2**64, 1e2, False, "", None]) | json_values,
    "trip_distance": st.sampled_from([-1, -0.0, 0, 500, 500.5, 1e400, float("nan"), "3.66", True, None]) | json_values,
    "ride_id": st.sampled_from(["", "  ", True, None, 1.5, [1], {}]) | json_values,
}


@st.composite
def rides(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ride, or one with one field wrong or missing: each rule of the schema, just broken."""
    ride = draw(valid_rides)
    if draw(st.booleans()):
        field = draw(st.sampled_from(sorted(NEAR_MISSES)))
        if draw(st.booleans()):
            ride[field] = draw(NEAR_MISSES[field])
        else:
            ride.pop(field, None)
    return ride


ride_ids = st.integers() | st.text(max_size=4) | NEAR_MISSES["ride_id"]
items = rides() | st.fixed_dictionaries({"ride": rides() | json_values}, optional={"ride_id": ride_ids}) | json_values
bodies = (items | st.lists(items, max_size=5)).map(json.dumps)


def judged_ride_by_ride(text: str) -> list[tuple[Ride, RideId | None]] | None:
    """Each ride of the body and its id, as the schema judges them one by one; None if the body is refused."""
    try:
        body = validate_json(ANY_JSON, text)
    except InvalidJson:
        return None
    if not isinstance(body, list | dict):
        return None
    judged: list[tuple[Ride, RideId | None]] = []
    for item in body if isinstance(body, list) else [body]:
        try:
            if isinstance(item, dict) and "ride" in item:
                event = validate_ride_event(item)
                judged.append((event["ride"], event["ride_id"]))
            elif isinstance(item, dict) and "ride_id" in item:
                event = validate_ride_event({"ride": item, "ride_id": item["ride_id"]})
                judged.append((event["ride"], event["ride_id"]))
            else:
                judged.append((validate_ride(item), None))
        except SchemaViolation:
            return None
    return judged


def errors_ride_by_ride(items: list[Any]) -> list[dict[str, Any]]:
    """Each ride's errors as the schema names them one ride at a time, with the ride's index."""
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, dict) and "ride" in item:
                validate_ride_event(item)
            elif isinstance(item, dict) and "ride_id" in item:
                try:
                    validate_ride_event({"ride": item, "ride_id": item["ride_id"]})
                except SchemaViolation as exc:  # named as the client wrote them, without the event's "ride."
                    raise SchemaViolation(
                        [{**e, "field": e["field"].removeprefix("ride.")} for e in exc.errors]
                    ) from None
            else:
                validate_ride(item)
        except SchemaViolation as exc:
            errors.extend({"index": index, **error} for error in exc.errors)
    return errors


@pytest.fixture(scope="module")
def client(service) -> FlaskClient:
    return create_app(RideModels([service]), Settings()).test_client()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies)
def test_the_one_call_validation_accepts_exactly_the_rides_the_schema_accepts_one_by_one(text):
    body = validate_json(ANY_JSON, text)  # the bodies generated here are all JSON the parser accepts
    try:
        validate_body_rides(body if isinstance(body, list) else [body])
        accepted = True
    except InvalidRides:
        accepted = False

    assert accepted == (judged_ride_by_ride(text) is not None)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies)
def test_any_body_is_answered_as_the_schema_judges_each_of_its_rides(client, service, text):
    judged = judged_ride_by_ride(text)

    response = client.post("/predict", data=text.encode(), content_type="application/json")

    if judged is None:
        assert response.status_code == 400
        return
    assert response.status_code == 200
    durations = service.predict([ride for ride, _ in judged])
    expected = [
        {"duration": d} if ride_id is None else {"duration": d, "ride_id": ride_id}
        for d, (_, ride_id) in zip(durations, judged, strict=True)
    ]
    if isinstance(json.loads(text), list):
        assert response.get_json() == {"predictions": expected, "model_versions": {"duration": service.version}}
    else:
        assert response.get_json() == {**expected[0], "model_versions": {"duration": service.version}}


@settings(max_examples=400, deadline=None)
@given(st.lists(items, max_size=5))
def test_the_one_call_names_every_error_of_every_ride_as_judging_them_one_by_one_does(body):
    expected = errors_ride_by_ride(body)
    try:
        validate_body_rides(body)
        found: list[dict[str, Any]] = []
    except InvalidRides as refused:
        found = [dict(error) for error in refused.errors]

    assert found == expected
