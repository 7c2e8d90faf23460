"""Validated rides in, predictions out: the one place a prediction is made.

``PredictionService`` is one model (what a stream prediction function
serves); ``RideModels`` is several, one per target, each asked about every
ride (what the web service and batch scoring serve: duration and cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from model_service.config import Settings
from model_service.errors import InvalidSetting, NonFinitePrediction
from model_service.model.features import columns_for_rides
from model_service.model.load import LoadedModel, load_model
from model_service.model.target import Target

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
    def target(self) -> Target:
        """What the model predicts, from its own metadata."""
        return self._model.target

    @property
    def model_uri(self) -> str:
        return self._model.uri

    @property
    def description(self) -> str:
        """What serves the model: a weight table (numpy), or scikit-learn and which estimator."""
        return self._model.description

    def predict(self, rides: Sequence[Ride]) -> list[float]:
        """The prediction for each ride, in order, from one vectorised call."""
        if not rides:
            return []
        return self.predict_columns(*columns_for_rides(rides)).tolist()

    def predict_columns(
        self, pu_location_id: np.ndarray, do_location_id: np.ndarray, trip_distance: np.ndarray
    ) -> np.ndarray:
        """Predictions for column data (batch scoring), from one vectorised call.

        The columns must already hold valid rides: int64 zone ids, float64 distances.
        """
        return self._model.predictor.predict(pu_location_id, do_location_id, trip_distance)


class RideModels:
    """The models served together, one per target: each ride gets every model's answer, keyed by target name."""

    def __init__(self, services: Sequence[PredictionService]) -> None:
        names = [service.target.name for service in services]
        if not services or len(set(names)) != len(names):
            raise InvalidSetting(f"MODEL_URIS must name one model per target, not models of {names}")
        self.services = tuple(services)

    @classmethod
    def from_settings(cls, settings: Settings) -> RideModels:
        """The models MODEL_URIS names, with MODEL_VERSIONS, MODEL_ALLOW_PICKLE and MLFLOW_TRACKING_URI."""
        uris, versions = settings.model_uris, settings.model_versions or ("",) * len(settings.model_uris)
        if len(versions) != len(uris):
            raise InvalidSetting(f"MODEL_VERSIONS has {len(versions)} items for the {len(uris)} of MODEL_URIS")
        return cls(
            [
                PredictionService.load(
                    uri, version or None, allow_pickle=settings.model_allow_pickle, tracking_uri=settings.tracking_uri
                )
                for uri, version in zip(uris, versions, strict=True)
            ]
        )

    @property
    def versions(self) -> dict[str, str]:
        """Each target's model version: ``{"duration": "1", "cost": "1"}``."""
        return {service.target.name: service.version for service in self.services}

    def predict(self, rides: Sequence[Ride]) -> dict[str, list[float]]:
        """Each target's prediction for each ride, in order, from one call per model.

        Raises NonFinitePrediction, naming the ride and the model, rather than answer NaN or infinity.
        """
        import numpy as np

        if not rides:
            return {service.target.name: [] for service in self.services}
        columns = columns_for_rides(rides)
        answers = {}
        for service in self.services:
            values = service.predict_columns(*columns)
            if not np.isfinite(values).all():
                index = int(np.flatnonzero(~np.isfinite(values))[0])
                raise NonFinitePrediction(service.target.name, float(values[index]), index)
            answers[service.target.name] = values.tolist()
        return answers

    def predict_columns(
        self, pu_location_id: np.ndarray, do_location_id: np.ndarray, trip_distance: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Each target's predictions for column data, from one call per model."""
        return {
            service.target.name: service.predict_columns(pu_location_id, do_location_id, trip_distance)
            for service in self.services
        }
