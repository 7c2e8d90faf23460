"""Validated rides in, minutes out: the one place a prediction is made."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from model_service.config import Settings
from model_service.model.features import columns_for_rides
from model_service.model.load import LoadedModel, load_model

if TYPE_CHECKING:
    import numpy as np

    from model_service.schema import Ride


class PredictionService:
    """Wraps the loaded model so every adapter predicts a whole batch in one call."""

    def __init__(self, model: LoadedModel) -> None:
        self._model = model

    @classmethod
    def load(
        cls, uri: str, version: str | None = None, *, allow_pickle: bool = False, tracking_uri: str | None = None
    ) -> PredictionService:
        """Load the model at ``uri``; ``version`` (MODEL_VERSION) overrides the one the model carries."""
        return cls(load_model(uri, version, allow_pickle=allow_pickle, tracking_uri=tracking_uri))

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionService:
        """The model the settings name (MODEL_URI, MODEL_VERSION, MODEL_ALLOW_PICKLE, MLFLOW_TRACKING_URI)."""
        return cls.load(
            settings.model_uri,
            settings.model_version,
            allow_pickle=settings.model_allow_pickle,
            tracking_uri=settings.tracking_uri,
        )

    @property
    def version(self) -> str:
        return self._model.version

    @property
    def model_uri(self) -> str:
        return self._model.uri

    @property
    def description(self) -> str:
        """What serves the model: a weight table (numpy), or scikit-learn and which estimator."""
        return self._model.description

    def predict(self, rides: Sequence[Ride]) -> list[float]:
        """Predicted minutes for each ride, in order, from one vectorised call."""
        if not rides:
            return []
        return self.predict_columns(*columns_for_rides(rides)).tolist()

    def predict_columns(
        self, pu_location_id: np.ndarray, do_location_id: np.ndarray, trip_distance: np.ndarray
    ) -> np.ndarray:
        """Predicted minutes for column data (batch scoring), from one vectorised call.

        The columns must already hold valid rides: int64 zone ids, float64 distances.
        """
        return self._model.predictor.predict(pu_location_id, do_location_id, trip_distance)
