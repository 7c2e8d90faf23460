"""The course's model family as what it is: a table of weights, served with numpy alone.

A DictVectorizer followed by a linear regressor predicts, for one ride,
``w[PU_DO] * 1 + w[trip_distance] * distance + intercept``: one weight per zone
pair the vectorizer knows (0 for a pair it never saw, which gets no column),
one for the distance, and the intercept. Kept as a ZONES x ZONES table, a
batch of rides is two array lookups and two additions, with no scikit-learn,
scipy or per-ride Python at serving time.

The table is stored as an ``.npz`` of three float64 arrays, read with
``allow_pickle=False``: loading it can never run code, whatever the file holds.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_service.errors import InvalidWeightTable
from model_service.model.features import ZONES, pair_index

FLAVOR = "ride_weight_table"
"""The MLflow flavour, in the model's MLmodel, that points at the table file."""
FLAVORS = (FLAVOR, "ride_duration_weight_table")
"""Every name the flavour has had: models logged when duration was the only target use the second."""
FILE_NAME = "weight_table.npz"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class WeightTable:
    intercept: float
    distance_weight: float
    pair_weights: np.ndarray
    """ZONES x ZONES float64: the weight of ``PU_DO=<pu>_<do>`` at ``[pu, do]``, 0 where the model has none."""

    def __post_init__(self) -> None:
        """Every weight finite: a NaN off the smoke test's zone pair would otherwise pass start-up and reach events."""
        for name in ("intercept", "distance_weight", "pair_weights"):
            if not np.isfinite(getattr(self, name)).all():
                raise InvalidWeightTable(f"{name} holds NaN or infinite weights")

    def predict(self, pu_location_id: np.ndarray, do_location_id: np.ndarray, trip_distance: np.ndarray) -> np.ndarray:
        """Minutes for each ride; the same sums, in the same order, as the regressor over DictVectorizer's matrix."""
        minutes = trip_distance * self.distance_weight
        minutes += self.pair_weights.ravel().take(pair_index(pu_location_id, do_location_id))
        minutes += self.intercept
        return minutes

    @classmethod
    def from_coefficients(
        cls, pair_columns: np.ndarray, distance_column: int, coefficients: np.ndarray, intercept: float
    ) -> WeightTable:
        """The table of a linear model whose features sit at ``pair_columns`` (-1: none) and ``distance_column``."""
        coefficients = np.asarray(coefficients, dtype=np.float64)
        pair_weights = np.where(pair_columns >= 0, coefficients[pair_columns], 0.0).reshape(ZONES, ZONES)
        distance_weight = float(coefficients[distance_column]) if distance_column >= 0 else 0.0
        return cls(intercept=float(intercept), distance_weight=distance_weight, pair_weights=pair_weights)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            intercept=np.float64(self.intercept),
            distance_weight=np.float64(self.distance_weight),
            pair_weights=self.pair_weights.astype(np.float64),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> WeightTable:
        """Read a table written by ``to_bytes``; anything else is refused, never unpickled."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except ValueError as exc:  # numpy's refusal of object arrays, or not an npz at all
            raise InvalidWeightTable(f"not a weight table: {exc}") from None
        except (OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise InvalidWeightTable(f"not a weight table: {type(exc).__name__}: {exc}") from None
        expected = {"intercept": (), "distance_weight": (), "pair_weights": (ZONES, ZONES)}
        if set(arrays) != set(expected):
            raise InvalidWeightTable(f"expected the arrays {sorted(expected)}, found {sorted(arrays)}")
        for name, shape in expected.items():
            array: Any = arrays[name]
            if array.dtype != np.float64 or array.shape != shape:
                raise InvalidWeightTable(f"{name} is {array.dtype} {array.shape}, expected float64 {shape}")
        return cls(
            intercept=float(arrays["intercept"]),
            distance_weight=float(arrays["distance_weight"]),
            pair_weights=arrays["pair_weights"],
        )
