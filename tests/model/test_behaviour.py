"""How the models behave on real rides: what a longer trip, a renamed ride or an extra field does to a prediction.

Rides go through the prediction function's own processor (decoding,
validation, one model call, the prediction events), so these hold for what
the service serves, not only for the bare estimator.
"""

from __future__ import annotations

import json
import math

import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent

from model_service.config import Settings
from model_service.kinesis.events import PredictionEvent
from model_service.kinesis.function import prediction_steps
from model_service.kinesis.publish import CollectingPublisher, Deadline, Publishers
from model_service.service import PredictionService
from stream_tools.local_invoke import kinesis_event
from stream_tools.producer import ride_event
from tests.model.conftest import course_model

pytestmark = pytest.mark.shared_data


def prediction_events(model: PredictionService, events: list[dict]) -> list[PredictionEvent]:
    """The prediction events the prediction function publishes for these ride events, one each, in order."""
    predictions, dead_letters = CollectingPublisher(), CollectingPublisher()
    records = KinesisStreamEvent(kinesis_event(json.dumps(e).encode() for e in events)).records
    processor = prediction_steps(model, Settings()).processor(Publishers(predictions, dead_letters))
    processor.process(records, Deadline.after(60))
    assert dead_letters.take() == [], "every ride here is valid"
    return [record.event for record in predictions.take()]


def served(model: PredictionService, events: list[dict]) -> list[float]:
    """What the prediction function publishes for ride events: minutes, or dollars, by the model's target."""
    field = model.target.event_field
    return [event["prediction"][field] for event in prediction_events(model, events)]


def with_distance(ride: dict, distance: float) -> dict:
    return {**ride, "trip_distance": distance}


@pytest.mark.parametrize("longer_by", [0.1, 2.0, 25.0])
def test_a_longer_trip_between_the_same_zones_is_never_predicted_shorter(model, february_rides, longer_by):
    rides = [r for r in february_rides if r["trip_distance"] + longer_by <= 500]
    shorter = model.predict(rides)
    longer = model.predict([with_distance(r, r["trip_distance"] + longer_by) for r in rides])
    assert all(b >= a for a, b in zip(shorter, longer, strict=True))


def test_the_ride_id_changes_nothing_but_the_ride_id_it_is_published_with(model, february_rides):
    rides = february_rides[:200]
    as_numbers = prediction_events(model, [ride_event(i, **_fields(r)) for i, r in enumerate(rides)])
    as_text = prediction_events(model, [ride_event(f"2021/02_{i}", **_fields(r)) for i, r in enumerate(rides)])
    field = model.target.event_field
    assert [e["prediction"][field] for e in as_numbers] == [e["prediction"][field] for e in as_text]
    assert [e["prediction"]["ride_id"] for e in as_text] == [f"2021/02_{i}" for i in range(len(rides))]


def test_extra_fields_change_nothing(model, february_rides):
    rides = february_rides[:200]
    plain = served(model, [ride_event(i, **_fields(r)) for i, r in enumerate(rides)])
    extra = []
    for i, r in enumerate(rides):
        event = ride_event(i, **_fields(r))
        event["ride"] |= {"passenger_count": 2, "fare_amount": 12.5, "PU_DO": "1_1"}
        event["source"] = "app"
        extra.append(event)
    assert served(model, extra) == plain


def test_a_whole_number_distance_as_int_or_float_changes_nothing(model, february_rides):
    rides = february_rides[:200]
    zones = [(r["PULocationID"], r["DOLocationID"]) for r in rides]
    as_float = served(model, [ride_event(i, pu, do, float(i % 30)) for i, (pu, do) in enumerate(zones)])
    as_int = served(model, [ride_event(i, pu, do, i % 30) for i, (pu, do) in enumerate(zones)])
    assert as_int == as_float


def test_every_real_ride_gets_a_finite_prediction_within_its_targets_range(model, february_rides):
    predictions = model.predict(february_rides)
    assert all(math.isfinite(value) for value in predictions)
    assert sum(model.target.low <= value <= model.target.high for value in predictions) >= 0.99 * len(predictions)


COURSE_RIDES = [(130, 205, 3.66, 12.7855), (10, 50, 40, 26.4388)]
"""The course's sample rides and what its lin_reg.bin predicts for them."""


@pytest.mark.parametrize(("pu", "do", "distance", "minutes"), COURSE_RIDES)
def test_the_course_model_served_here_gives_the_courses_predictions(pu, do, distance, minutes):
    (predicted,) = served(course_model(), [ride_event(256, pu, do, distance)])
    assert predicted == pytest.approx(minutes, abs=1e-4)


@pytest.mark.parametrize(("pu", "do", "distance", "minutes"), COURSE_RIDES)
def test_every_duration_model_predicts_the_courses_rides_within_a_minute_of_the_course(
    duration_model, pu, do, distance, minutes
):
    """A model trained here by the course's procedure on the same month lands close to the course's own."""
    (predicted,) = served(duration_model, [ride_event(256, pu, do, distance)])
    assert predicted == pytest.approx(minutes, abs=1.0)


def _fields(ride: dict) -> dict:
    return {"pu": ride["PULocationID"], "do": ride["DOLocationID"], "distance": ride["trip_distance"]}
