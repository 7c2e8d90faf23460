"""The one definition of the model's features, shared by training and every adapter.

The course's model was fitted on ``PU_DO = "<PU>_<DO>"`` and ``trip_distance``;
any other spelling of these features would silently predict nonsense.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from model_service.schema import Ride

Features = dict[str, str | float]


def ride_features(pu_location_id: int, do_location_id: int, trip_distance: float) -> Features:
    """The feature dict the DictVectorizer expects for one ride."""
    return {"PU_DO": f"{pu_location_id}_{do_location_id}", "trip_distance": trip_distance}


def features_for_rides(rides: Iterable[Ride]) -> list[Features]:
    return [ride_features(r["PULocationID"], r["DOLocationID"], r["trip_distance"]) for r in rides]


def features_for_frame(trips: pd.DataFrame) -> list[Features]:
    """Features for a frame of TLC trips whose id columns are non-null integers."""
    columns: Sequence = (
        trips["PULocationID"].astype("int64").tolist(),
        trips["DOLocationID"].astype("int64").tolist(),
        trips["trip_distance"].astype("float64").tolist(),
    )
    return [ride_features(pu, do, dist) for pu, do, dist in zip(*columns, strict=True)]
