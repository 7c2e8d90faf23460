"""The one definition of the model's features, shared by training and every adapter.

The course's model was fitted on ``PU_DO = "<PU>_<DO>"`` and ``trip_distance``
through a DictVectorizer; any other spelling of these features would silently
predict nonsense. Training still builds the feature dicts (DictVectorizer.fit
needs them). Serving never does: a ride is three numbers, and
``FeatureLayout.matrix`` builds from whole columns the very sparse matrix
``DictVectorizer.transform`` would return for their dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from model_service.errors import SchemaViolation
from model_service.schema import MAX_ZONE_ID
from model_service.trips import ID_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from model_service.schema import Ride

FEATURE_COLUMNS = (*ID_COLUMNS, "trip_distance")
"""The ride fields, and TLC trip columns, that the features are made of."""

PAIR_FEATURE = "PU_DO"
DISTANCE_FEATURE = "trip_distance"
ZONES = MAX_ZONE_ID + 1
"""Zone ids index tables directly (0..265; the schema admits 1..265)."""

Features = dict[str, str | float]


def ride_features(pu_location_id: int, do_location_id: int, trip_distance: float) -> Features:
    """The feature dict the DictVectorizer expects for one ride."""
    return {PAIR_FEATURE: f"{pu_location_id}_{do_location_id}", DISTANCE_FEATURE: trip_distance}


def features_for_frame(trips: pd.DataFrame) -> list[Features]:
    """Feature dicts, for fitting, of a frame of TLC trips whose id columns are non-null integers."""
    return [
        ride_features(pu, do, dist)
        for pu, do, dist in zip(
            trips["PULocationID"].astype("int64").tolist(),
            trips["DOLocationID"].astype("int64").tolist(),
            trips["trip_distance"].astype("float64").tolist(),
            strict=True,
        )
    ]


def columns_for_rides(rides: Sequence[Ride]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated rides as the three feature columns: int64 zone ids, float64 distances."""
    n = len(rides)
    return (
        np.fromiter((r["PULocationID"] for r in rides), dtype=np.int64, count=n),
        np.fromiter((r["DOLocationID"] for r in rides), dtype=np.int64, count=n),
        np.fromiter((r["trip_distance"] for r in rides), dtype=np.float64, count=n),
    )


def pair_index(pu_location_id: np.ndarray, do_location_id: np.ndarray) -> np.ndarray:
    """Each ride's cell in a ZONES x ZONES table, flattened; refuses ids no table has a cell for."""
    for field, ids in (("PULocationID", pu_location_id), ("DOLocationID", do_location_id)):
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= ZONES):
            reason = f"zone ids must be 0 to {ZONES - 1} (validate rides first), got {ids.min()}..{ids.max()}"
            raise SchemaViolation([{"field": field, "reason": reason}])
    return pu_location_id.astype(np.intp) * ZONES + do_location_id


@dataclass(frozen=True)
class FeatureLayout:
    """Where a fitted DictVectorizer puts each feature of a ride: a column per zone pair, one for the distance."""

    pair_columns: np.ndarray
    """Flat ZONES x ZONES int32 table: the column of ``PU_DO=<pu>_<do>``, or -1 if the vectorizer never saw it."""
    distance_column: int
    """The column of ``trip_distance``, or -1."""
    n_features: int
    dtype: Any
    """The vectorizer's dtype, that of the matrix's values."""

    @classmethod
    def of(cls, vectorizer: Any) -> FeatureLayout:
        """The layout of a fitted DictVectorizer, looked up with the keys ``transform`` would build."""
        vocabulary: dict[str, int] = vectorizer.vocabulary_
        prefix = f"{PAIR_FEATURE}{vectorizer.separator}"
        pair_columns = np.array(
            [vocabulary.get(f"{prefix}{pu}_{do}", -1) for pu in range(ZONES) for do in range(ZONES)], dtype=np.int32
        )
        return cls(
            pair_columns=pair_columns,
            distance_column=vocabulary.get(DISTANCE_FEATURE, -1),
            n_features=len(vocabulary),
            dtype=vectorizer.dtype,
        )

    def matrix(self, pu_location_id: np.ndarray, do_location_id: np.ndarray, trip_distance: np.ndarray) -> Any:
        """The matrix ``DictVectorizer.transform`` returns for these rides' feature dicts, entry for entry.

        Same shape, dtype, sorted column indices, row pointers and values;
        scipy's index type may be narrower (int32), which every estimator takes.

        Row by row: a 1 in the pair's column when the vectorizer knows the pair
        (an unseen pair has no column, as in ``transform``), then the distance;
        columns sorted within each row, as ``transform`` sorts them.
        """
        from scipy import sparse

        pair_columns = self.pair_columns[pair_index(pu_location_id, do_location_id)]
        known_pair = pair_columns >= 0
        has_distance = self.distance_column >= 0
        counts = known_pair.astype(np.int64) + int(has_distance)
        indptr = np.zeros(len(pair_columns) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        values = np.empty(int(indptr[-1]), dtype=self.dtype)
        row_start = indptr[:-1]
        indices[row_start[known_pair]] = pair_columns[known_pair]
        values[row_start[known_pair]] = 1
        if has_distance:
            indices[indptr[1:] - 1] = self.distance_column
            values[indptr[1:] - 1] = trip_distance
        matrix = sparse.csr_matrix(
            (values, indices, indptr), shape=(len(pair_columns), self.n_features), dtype=self.dtype
        )
        matrix.sort_indices()
        return matrix
