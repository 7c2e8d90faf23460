"""The one feature definition, the course's: PU_DO and trip_distance."""

from model_service.features import features_for_frame, features_for_rides, ride_features
from model_service.sample_data import make_trips
from tests.factories import rides_from_trips


def test_pickup_and_dropoff_join_with_underscore():
    assert ride_features(130, 205, 3.66) == {"PU_DO": "130_205", "trip_distance": 3.66}


def test_rides_and_trip_frames_give_the_same_features():
    trips = make_trips(50, seed=3)
    rides = rides_from_trips(trips)
    assert features_for_rides(rides) == features_for_frame(trips)


def test_float_id_columns_still_give_integer_pairs():
    trips = make_trips(3).astype({"PULocationID": "float64", "DOLocationID": "Int32"})
    assert all("." not in f["PU_DO"] for f in features_for_frame(trips))
