"""The one definition of the model's features, shared by training and every adapter.

The course's model was fitted on ``PU_DO = "<PU>_<DO>"`` and ``trip_distance``;
any other spelling of these features would silently predict nonsense.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from model_service.trips import ID_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from model_service.schema import Ride

FEATURE_COLUMNS = (*ID_COLUMNS, "trip_distance")
"""The ride fields, and TLC trip columns, that the features are made of."""

Features = dict[str, str | float]


def ride_features(pu_location_id: int, do_location_id: int, trip_distance: float) -> Features:
    """The feature dict the DictVectorizer expects for one ride."""
    return {"PU_DO": f"{pu_location_id}_{do_location_id}", "trip_distance": trip_distance}


def features_for_rides(rides: Iterable[Ride]) -> list[Features]:
    return [ride_features(r["PULocationID"], r["DOLocationID"], r["trip_distance"]) for r in rides]


def features_for_columns(
    pu_location_id: Sequence[int], do_location_id: Sequence[int], trip_distance: Sequence[float]
) -> list[Features]:
    """Features for column data: plain int zone ids and float distances, one entry per trip."""
    return [
        ride_features(pu, do, dist) for pu, do, dist in zip(pu_location_id, do_location_id, trip_distance, strict=True)
    ]


def features_for_frame(trips: pd.DataFrame) -> list[Features]:
    """Features for a frame of TLC trips whose id columns are non-null integers."""
    return features_for_columns(
        trips["PULocationID"].astype("int64").tolist(),
        trips["DOLocationID"].astype("int64").tolist(),
        trips["trip_distance"].astype("float64").tolist(),
    )
