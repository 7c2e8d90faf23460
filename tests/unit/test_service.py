"""The prediction service: one vectorised call that equals the per-ride predictions."""

import dataclasses

import numpy as np
import pytest

from model_service.config import Settings
from model_service.errors import UnsafeModel
from model_service.model.features import FEATURE_COLUMNS
from model_service.sample_data import make_trips
from model_service.service import PredictionService
from tests.factories import rides_from_trips


def rides(n: int):
    return rides_from_trips(make_trips(n, seed=7))


def test_batch_prediction_equals_per_ride_predictions(service):
    batch = rides(300)
    one_by_one = [service.predict([ride])[0] for ride in batch]
    assert service.predict(batch) == pytest.approx(one_by_one, rel=1e-12)


class CountingPredictor:
    def __init__(self, predictor):
        self.predictor = predictor
        self.calls = []

    def predict(self, *columns):
        self.calls.append(len(columns[0]))
        return self.predictor.predict(*columns)


@pytest.fixture
def counting(service):
    counting = CountingPredictor(service._model.predictor)
    return counting, PredictionService(dataclasses.replace(service._model, predictor=counting))


def test_batch_prediction_makes_one_model_call(counting):
    predictor, service = counting
    service.predict(rides(50))
    assert predictor.calls == [50]


def test_empty_batch_predicts_nothing_without_calling_the_model(counting):
    predictor, service = counting
    assert service.predict([]) == []
    assert predictor.calls == []


def test_predictions_are_plain_floats_for_json(service):
    assert all(type(p) is float for p in service.predict(rides(3)))


def test_column_prediction_equals_ride_prediction(service):
    batch = rides(10)
    columns = [np.array([ride[name] for ride in batch]) for name in FEATURE_COLUMNS]
    assert service.predict_columns(*columns).tolist() == service.predict(batch)


def test_the_service_says_what_serves_the_model(mlflow_model_dir):
    assert PredictionService.load(str(mlflow_model_dir)).description == "weight table (numpy)"


@pytest.fixture
def pickled_mlflow_model(tmp_path, fitted_pipeline):
    import mlflow.sklearn

    path = tmp_path / "pickled"
    mlflow.sklearn.save_model(fitted_pipeline, str(path), serialization_format="pickle", pip_requirements=[])
    return path


def test_model_allow_pickle_lets_a_pickled_mlflow_model_load(pickled_mlflow_model):
    settings = Settings.from_env({"MODEL_URI": str(pickled_mlflow_model), "MODEL_ALLOW_PICKLE": "true"})
    assert PredictionService.from_settings(settings).predict(rides(1))


def test_without_model_allow_pickle_a_pickled_mlflow_model_is_refused(pickled_mlflow_model):
    settings = Settings.from_env({"MODEL_URI": str(pickled_mlflow_model)})
    with pytest.raises(UnsafeModel, match="MODEL_ALLOW_PICKLE=true"):
        PredictionService.from_settings(settings)
