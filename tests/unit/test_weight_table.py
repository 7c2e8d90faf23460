"""The linear family served as a weight table predicts what scikit-learn predicts, and its file cannot run code."""

import io
import pickle
import warnings

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
from sklearn.pipeline import make_pipeline

from model_service.errors import InvalidWeightTable
from model_service.model.features import ZONES, features_for_frame
from model_service.model.sklearn_model import SparseModel, predictor_for
from model_service.model.weight_table import WeightTable
from model_service.sample_data import make_trips
from model_service.trips import add_duration
from tests.conftest import shared_path
from tests.factories import feature_columns

EXACT = 1e-9
"""Minutes: the table and scikit-learn must agree to this, on every ride."""


@pytest.fixture(scope="module")
def trips():
    return add_duration(make_trips(3000, seed=5))


@pytest.fixture(scope="module")
def unseen_trips():
    """Other trips: many zone pairs the models never saw, some zero distances."""
    trips = make_trips(3000, seed=6)
    trips.loc[::10, "trip_distance"] = 0.0
    return trips


def fit(estimator, trips):
    vectorizer = DictVectorizer().fit(features_for_frame(trips))
    features = vectorizer.transform(features_for_frame(trips))
    # Lasso and ElasticNet fit only int32-indexed matrices, and transform's are int64 with this scipy.
    features.indices, features.indptr = features.indices.astype(np.int32), features.indptr.astype(np.int32)
    estimator.fit(features, trips["duration"].to_numpy())
    return make_pipeline(vectorizer, estimator)


@pytest.mark.parametrize(
    "regressor",
    [LinearRegression(), Ridge(alpha=0.5), Lasso(alpha=0.01), ElasticNet(alpha=0.01)],
    ids=lambda r: type(r).__name__,
)
def test_each_linear_regressor_becomes_a_table_that_predicts_what_it_predicts(regressor, trips, unseen_trips):
    pipeline = fit(regressor, trips)
    predictor, description = predictor_for(pipeline)
    assert isinstance(predictor, WeightTable), description
    expected = pipeline.predict(features_for_frame(unseen_trips))
    assert np.max(np.abs(predictor.predict(*feature_columns(unseen_trips)) - expected)) <= EXACT


def test_a_forest_keeps_scikit_learn_and_predicts_what_the_pipeline_predicts(trips, unseen_trips):
    pipeline = fit(RandomForestRegressor(n_estimators=5, random_state=0), trips)
    predictor, description = predictor_for(pipeline)
    assert isinstance(predictor, SparseModel)
    assert description == "scikit-learn RandomForestRegressor"
    expected = pipeline.predict(features_for_frame(unseen_trips))
    assert np.array_equal(predictor.predict(*feature_columns(unseen_trips)), expected)


def test_a_course_style_tuple_is_served_like_a_pipeline(fitted_pipeline, unseen_trips):
    vectorizer, regressor = (step for _, step in fitted_pipeline.steps)
    table, _ = predictor_for((vectorizer, regressor))
    expected = fitted_pipeline.predict(features_for_frame(unseen_trips))
    assert np.max(np.abs(table.predict(*feature_columns(unseen_trips)) - expected)) <= EXACT


def test_the_table_survives_its_file_unchanged(fitted_pipeline):
    table, _ = predictor_for(fitted_pipeline)
    again = WeightTable.from_bytes(table.to_bytes())
    assert (again.intercept, again.distance_weight) == (table.intercept, table.distance_weight)
    assert np.array_equal(again.pair_weights, table.pair_weights)


class _Boom:
    ran = False

    def __reduce__(self):
        return (_Boom.explode, ())

    @staticmethod
    def explode():
        _Boom.ran = True
        return 0


def test_a_table_file_holding_pickled_objects_is_refused_without_running_them():
    buffer = io.BytesIO()
    np.savez(
        buffer,
        intercept=np.array([_Boom()], dtype=object),
        distance_weight=np.float64(1),
        pair_weights=np.zeros((ZONES, ZONES)),
    )
    with pytest.raises(InvalidWeightTable, match="not a weight table"):
        WeightTable.from_bytes(buffer.getvalue())
    assert not _Boom.ran


@pytest.mark.parametrize(
    ("arrays", "reason"),
    [
        ({"intercept": 1.0, "distance_weight": 1.0}, "expected the arrays"),
        ({"intercept": 1.0, "distance_weight": 1.0, "pair_weights": np.zeros((10, 10))}, r"\(10, 10\)"),
        ({"intercept": np.nan, "distance_weight": 1.0, "pair_weights": np.zeros((ZONES, ZONES))}, "NaN"),
        ({"intercept": np.int64(1), "distance_weight": 1.0, "pair_weights": np.zeros((ZONES, ZONES))}, "int64"),
    ],
    ids=["missing array", "wrong shape", "NaN", "wrong dtype"],
)
def test_a_table_file_that_is_not_one_this_code_wrote_is_refused(arrays, reason):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(InvalidWeightTable, match=reason):
        WeightTable.from_bytes(buffer.getvalue())


def test_bytes_that_are_not_an_npz_are_refused():
    with pytest.raises(InvalidWeightTable, match="not a weight table"):
        WeightTable.from_bytes(b"PK\x03\x04 not really a zip")


@pytest.fixture(scope="module")
def course_model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pickled with scikit-learn 1.0.2
        return pickle.loads(shared_path("models/lin_reg.bin").read_bytes())


@pytest.mark.shared_data
@pytest.mark.parametrize("month", ["2021-01", "2021-02"])
def test_the_course_lin_reg_table_predicts_what_scikit_learn_predicts_on_every_real_trip(course_model, month):
    import pandas as pd

    trips = pd.read_parquet(shared_path(f"data/green_tripdata_{month}.parquet"))
    trips = trips.dropna(subset=["PULocationID", "DOLocationID"]).astype({"PULocationID": int, "DOLocationID": int})
    vectorizer, regressor = course_model
    expected = regressor.predict(vectorizer.transform(features_for_frame(trips)))
    table, _ = predictor_for(course_model)
    assert isinstance(table, WeightTable)
    assert np.max(np.abs(table.predict(*feature_columns(trips)) - expected)) <= EXACT


@pytest.mark.shared_data
def test_the_course_lin_reg_table_predicts_the_courses_test_ride(course_model):
    table, _ = predictor_for(course_model)
    minutes = table.predict(np.array([130, 10]), np.array([205, 50]), np.array([3.66, 40.0]))
    assert minutes == pytest.approx([12.7855, 26.4388], abs=1e-4)
