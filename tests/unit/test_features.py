"""The one feature definition, the course's (PU_DO and trip_distance), and the matrix built without dicts."""

import numpy as np
import pytest
from sklearn.feature_extraction import DictVectorizer

from model_service.model.features import (
    FeatureLayout,
    columns_for_rides,
    features_for_frame,
    pair_index,
    ride_features,
)
from model_service.sample_data import make_trips
from tests.conftest import shared_path
from tests.factories import rides_from_trips


def test_pickup_and_dropoff_join_with_underscore():
    assert ride_features(130, 205, 3.66) == {"PU_DO": "130_205", "trip_distance": 3.66}


def test_float_id_columns_still_give_integer_pairs():
    trips = make_trips(3).astype({"PULocationID": "float64", "DOLocationID": "Int32"})
    assert all("." not in f["PU_DO"] for f in features_for_frame(trips))


def test_rides_become_int64_zone_and_float64_distance_columns():
    pu, do, distance = columns_for_rides(rides_from_trips(make_trips(5, seed=3)))
    assert (pu.dtype, do.dtype, distance.dtype) == (np.int64, np.int64, np.float64)
    assert len(pu) == len(do) == len(distance) == 5


def assert_same_matrix(built, transformed):
    """Entry for entry: shape, dtype, sorted columns, row pointers, values."""
    assert built.shape == transformed.shape
    assert built.dtype == transformed.dtype
    assert built.has_sorted_indices
    assert np.array_equal(built.indptr, transformed.indptr)
    assert np.array_equal(built.indices, transformed.indices)
    assert np.array_equal(built.data, transformed.data)


def matrices(vectorizer, pu, do, distance):
    built = FeatureLayout.of(vectorizer).matrix(pu, do, distance)
    dicts = [ride_features(p, d, x) for p, d, x in zip(pu.tolist(), do.tolist(), distance.tolist(), strict=True)]
    return built, vectorizer.transform(dicts)


def test_the_matrix_equals_dictvectorizer_transform_with_unseen_pairs_and_zero_distances(fitted_pipeline):
    vectorizer = fitted_pipeline.steps[0][1]
    rng = np.random.default_rng(0)
    pu, do = rng.integers(1, 266, 5000), rng.integers(1, 266, 5000)
    distance = np.round(rng.uniform(0, 30, 5000), 2)
    distance[::7] = 0.0
    built, transformed = matrices(vectorizer, pu, do, distance)
    assert (transformed.getnnz(axis=1) == 1).any(), "some pairs must be unseen for this test to mean anything"
    assert_same_matrix(built, transformed)


def test_a_vocabulary_in_fitting_order_gives_the_same_matrix_as_transform():
    vectorizer = DictVectorizer(sort=False).fit([ride_features(3, 4, 1.0), ride_features(1, 2, 2.5)])
    built, transformed = matrices(vectorizer, np.array([1, 3, 9]), np.array([2, 4, 9]), np.array([1.5, 0.0, 2.0]))
    assert vectorizer.vocabulary_["trip_distance"] < vectorizer.vocabulary_["PU_DO=1_2"]
    assert_same_matrix(built, transformed)


def test_a_float32_vectorizer_gives_float32_values_as_transform_does():
    vectorizer = DictVectorizer(dtype=np.float32).fit([ride_features(1, 2, 1.0)])
    built, transformed = matrices(vectorizer, np.array([1]), np.array([2]), np.array([3.3]))
    assert_same_matrix(built, transformed)


def test_zone_ids_outside_every_table_are_refused_not_wrapped_around():
    with pytest.raises(ValueError, match="zone ids must be 0 to 265"):
        pair_index(np.array([-1]), np.array([5]))
    with pytest.raises(ValueError, match="zone ids must be 0 to 265"):
        pair_index(np.array([5]), np.array([266]))


@pytest.mark.shared_data
@pytest.mark.parametrize("month", ["2021-01", "2021-02"])
def test_on_the_real_months_the_matrix_equals_the_course_vectorizers_transform(month):
    import pickle
    import warnings

    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pickled with scikit-learn 1.0.2
        vectorizer, _ = pickle.loads(shared_path("models/lin_reg.bin").read_bytes())
    trips = pd.read_parquet(shared_path(f"data/green_tripdata_{month}.parquet"))
    trips = trips.dropna(subset=["PULocationID", "DOLocationID", "trip_distance"])
    columns = [trips[c].to_numpy(dtype=t) for c, t in (("PULocationID", "int64"), ("DOLocationID", "int64"))]
    built, transformed = matrices(vectorizer, *columns, trips["trip_distance"].to_numpy(dtype="float64"))
    assert_same_matrix(built, transformed)
