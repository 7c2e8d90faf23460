"""Train the ride-duration model on TLC trips and track it in MLflow.

The course's recipe, unchanged: January trains, February validates, features
from ``model_service.features``, a DictVectorizer in front of the regressor,
all in one sklearn pipeline so the logged model takes feature dicts directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from model_service.config import REGISTERED_MODEL_NAME
from model_service.features import features_for_frame
from model_service.trips import read_training_trips

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

EXPERIMENT_NAME = "ride-duration"
MODEL_TYPES = ("linear", "random-forest")
TRUSTED_TYPES = {"random-forest": ["sklearn.tree._tree.Tree"]}
"""MLflow saves sklearn models with skops, which loads only types it is told to trust."""


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    rmse: float
    model_uri: str
    """What to set MODEL_URI to: the registered version, or the run's model."""
    registered_version: str | None


def build_pipeline(model_type: str) -> Pipeline:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    if model_type == "linear":
        return make_pipeline(DictVectorizer(), LinearRegression())
    if model_type == "random-forest":
        # The course's forest: deep enough to use the pairs, leaves big enough not to memorise.
        forest = RandomForestRegressor(n_estimators=100, max_depth=20, min_samples_leaf=10, n_jobs=-1, random_state=0)
        return make_pipeline(DictVectorizer(), forest)
    raise ValueError(f"unknown model type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}")


def train(
    train_path: str,
    val_path: str,
    *,
    model_type: str = "linear",
    tracking_uri: str,
    experiment: str = EXPERIMENT_NAME,
    register: bool = True,
) -> TrainingResult:
    import mlflow
    from sklearn.metrics import root_mean_squared_error

    train_trips = read_training_trips(train_path)
    val_trips = read_training_trips(val_path)
    if train_trips.empty or val_trips.empty:
        raise ValueError("no trips of 1 to 60 minutes to train or validate on")

    pipeline = build_pipeline(model_type)
    pipeline.fit(features_for_frame(train_trips), train_trips["duration"].to_numpy())
    rmse = float(
        root_mean_squared_error(val_trips["duration"].to_numpy(), pipeline.predict(features_for_frame(val_trips)))
    )

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        mlflow.log_params(
            {
                "model_type": model_type,
                "train_data": train_path,
                "val_data": val_path,
                "train_trips": len(train_trips),
                "val_trips": len(val_trips),
            }
        )
        mlflow.log_metric("rmse", rmse)
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name=REGISTERED_MODEL_NAME if register else None,
            skops_trusted_types=TRUSTED_TYPES.get(model_type),
        )
    version = str(info.registered_model_version) if register and info.registered_model_version else None
    model_uri = f"models:/{REGISTERED_MODEL_NAME}/{version}" if version else f"runs:/{run.info.run_id}/model"
    return TrainingResult(run_id=run.info.run_id, rmse=rmse, model_uri=model_uri, registered_version=version)
