"""Champion against challenger: events joined by the ride they answer, both models on a month, the picture."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from model_service.model.compare import compare_on_trips, draw, join_events
from model_service.model.target import COST, DURATION
from model_service.sample_data import make_trips
from model_service.service import PredictionService


def event(seq: int, value: float, consumer: str = "duration", version: str = "1", target=DURATION) -> dict:
    return {
        "model": target.event_model,
        "version": version,
        "prediction": {target.event_field: value, "ride_id": seq},
        "event_id": f"ride_events:shardId-000000000000:{seq}/{consumer}",
    }


def test_events_are_joined_by_the_input_record_and_differences_are_challenger_minus_champion():
    champion = [event(1, 10.0), event(2, 20.0), event(3, 30.0)]
    challenger = [
        event(2, 21.5, "duration-shadow", "2"),
        event(3, 29.0, "duration-shadow", "2"),
        event(4, 5.0, "duration-shadow", "2"),
    ]

    joined = join_events(champion, challenger, DURATION)

    assert (joined.compared, joined.champion_only, joined.challenger_only) == (2, 1, 1)
    assert joined.differences.tolist() == [1.5, -1.0]
    assert (joined.champion_versions, joined.challenger_versions) == ({"1"}, {"2"})


def test_a_repeated_event_counts_once():
    champion = [event(1, 10.0), event(1, 10.0)]
    challenger = [event(1, 11.0, "duration-shadow"), event(1, 11.0, "duration-shadow")]
    assert join_events(champion, challenger, DURATION).compared == 1


def test_other_consumers_and_models_on_the_same_streams_are_left_out():
    champion = [event(1, 10.0), event(1, 14.0, "cost", target=COST), {"raw": "not an event"}, event(2, 3.0, "tip")]
    challenger = [event(1, 12.0, "duration-shadow"), event(1, 15.0, "cost-shadow", target=COST)]

    joined = join_events(champion, challenger, DURATION)

    assert (joined.compared, joined.champion_only, joined.challenger_only) == (1, 0, 0)
    assert joined.differences.tolist() == [2.0]


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    path = tmp_path_factory.mktemp("month") / "green_tripdata_2021-03.parquet"
    make_trips(3000, seed=4, start="2021-03-01").to_parquet(path)
    return str(path)


class Shifted:
    """A predictor answering ``minutes`` more than another: a challenger known to be worse."""

    def __init__(self, predictor, minutes: float) -> None:
        self.predictor, self.minutes = predictor, minutes

    def predict(self, *columns):
        return self.predictor.predict(*columns) + self.minutes


def shifted(service, minutes: float) -> PredictionService:
    return PredictionService(dataclasses.replace(service._model, predictor=Shifted(service._model.predictor, minutes)))


def test_a_model_against_itself_differs_by_nothing(service, month):
    result = compare_on_trips(month, DURATION, service, service)
    assert result.champion_rmse == result.challenger_rmse
    assert result.interval == (0.0, 0.0)


def test_a_worse_challenger_has_a_higher_rmse_and_an_interval_above_zero(service, month):
    result = compare_on_trips(month, DURATION, service, shifted(service, 5.0))

    expected = float(np.sqrt(np.mean((result.actual - result.champion - 5.0) ** 2)))
    assert result.challenger_rmse == pytest.approx(expected)
    low, high = result.interval
    assert 0 < low <= result.difference <= high


def test_the_picture_is_a_png_with_the_month_and_the_live_rides(service, month, tmp_path):
    result = compare_on_trips(month, DURATION, service, shifted(service, 1.0))
    live = join_events(
        [event(1, 10.0), event(2, 12.0)],
        [event(1, 11.0, "duration-shadow"), event(2, 12.5, "duration-shadow")],
        DURATION,
    )

    picture = draw(DURATION, live, result, tmp_path / "compare.png", "ride-duration")

    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 20_000
