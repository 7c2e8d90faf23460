"""The prediction service: one vectorised call that equals the per-ride predictions."""

import numpy as np
import pytest

from model_service.features import FEATURE_COLUMNS
from model_service.sample_data import make_trips
from model_service.service import PredictionService
from tests.factories import rides_from_trips


@pytest.fixture
def service(model_bin):
    return PredictionService.load(str(model_bin))


def rides(n: int):
    return rides_from_trips(make_trips(n, seed=7))


def test_batch_prediction_equals_per_ride_predictions(service):
    batch = rides(300)
    one_by_one = [service.predict([ride])[0] for ride in batch]
    assert service.predict(batch) == pytest.approx(one_by_one, rel=1e-12)


def test_batch_prediction_makes_one_model_call(service, monkeypatch):
    calls = []
    predictor = service._model.predictor
    original = predictor.predict
    monkeypatch.setattr(predictor, "predict", lambda features: calls.append(len(features)) or original(features))
    service.predict(rides(50))
    assert calls == [50]


def test_empty_batch_predicts_nothing_without_calling_the_model(service, monkeypatch):
    monkeypatch.setattr(service._model.predictor, "predict", lambda f: pytest.fail("model called"))
    assert service.predict([]) == []


def test_predictions_are_plain_floats_for_json(service):
    assert all(type(p) is float for p in service.predict(rides(3)))


def test_column_prediction_equals_ride_prediction(service):
    batch = rides(10)
    columns = [np.array([ride[name] for ride in batch]) for name in FEATURE_COLUMNS]
    assert service.predict_columns(*columns).tolist() == service.predict(batch)
