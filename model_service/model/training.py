"""Train the ride-duration model on TLC trips and track it in MLflow.

The course's recipe, unchanged: January trains, February validates, features
from ``model_service.model.features``, a DictVectorizer in front of the regressor,
all in one sklearn pipeline so the logged model takes feature dicts directly.

The model is logged as MLflow's sklearn flavour saved with skops (never
pickle) and, for the linear family, with its weight table beside it in the
same model directory (a flavour of its own in MLmodel), which the functions
serve with numpy alone. This module is that flavour's ``save_model``, as
``mlflow.models.Model.log`` expects of a flavour module.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_service.config import REGISTERED_MODEL_NAME
from model_service.errors import BadInputFile, InvalidSetting, InvalidWeightTable
from model_service.model import weight_table as table_format
from model_service.model.features import FEATURE_COLUMNS, features_for_frame
from model_service.model.load import TRUSTED_TYPES
from model_service.trips import read_training_trips

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

EXPERIMENT_NAME = "ride-duration"
MODEL_TYPES = ("linear", "random-forest")
EXACTNESS = 1e-9
"""Largest difference, in minutes, allowed between the weight table and scikit-learn on the validation trips."""


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
    raise InvalidSetting(f"unknown model type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}")


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
    for path, trips in ((train_path, train_trips), (val_path, val_trips)):
        if trips.empty:
            raise BadInputFile(path, "no trips of 1 to 60 minutes to train or validate on")

    pipeline = build_pipeline(model_type)
    pipeline.fit(features_for_frame(train_trips), train_trips["duration"].to_numpy())
    val_predictions = pipeline.predict(features_for_frame(val_trips))
    rmse = float(root_mean_squared_error(val_trips["duration"].to_numpy(), val_predictions))
    check_weight_table(pipeline, val_trips, val_predictions)

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
        info = log_model(pipeline, registered_model_name=REGISTERED_MODEL_NAME if register else None)
    version = str(info.registered_model_version) if register and info.registered_model_version else None
    model_uri = f"models:/{REGISTERED_MODEL_NAME}/{version}" if version else f"runs:/{run.info.run_id}/model"
    return TrainingResult(run_id=run.info.run_id, rmse=rmse, model_uri=model_uri, registered_version=version)


def log_model(pipeline: Pipeline, registered_model_name: str | None = None) -> Any:
    """Log the fitted pipeline as the active run's ``model`` (with ``save_model`` below); MLflow's ModelInfo."""
    from mlflow.models import Model

    return Model.log(
        artifact_path=None,
        name="model",
        flavor=sys.modules[__name__],
        flavor_name="sklearn",
        registered_model_name=registered_model_name,
        sk_model=pipeline,
        serialization_format="skops",
    )


def weight_table_of(pipeline: Pipeline) -> table_format.WeightTable | None:
    """The fitted pipeline's weight table if its regressor is of the linear family, else None."""
    from model_service.model.sklearn_model import vectorizer_and_estimator, weight_table

    return weight_table(*vectorizer_and_estimator(pipeline))


def check_weight_table(pipeline: Pipeline, trips: pd.DataFrame, expected: np.ndarray) -> None:
    """Refuse to log a weight table that does not predict what scikit-learn predicts for ``trips``."""
    import numpy as np

    table = weight_table_of(pipeline)
    if table is None:
        return
    pu, do, distance = (trips[c].to_numpy() for c in FEATURE_COLUMNS)
    worst = float(np.max(np.abs(table.predict(pu, do, distance) - expected), initial=0.0))
    if not worst <= EXACTNESS:
        raise InvalidWeightTable(f"the weight table differs from scikit-learn by up to {worst:g} minutes")


def save_model(
    sk_model: Pipeline, path: str | Path, mlflow_model: Any = None, serialization_format: str = "skops"
) -> None:
    """Write ``sk_model`` as an MLflow model directory at ``path``: the sklearn flavour, plus its weight table.

    The sklearn flavour is saved with skops, trusting only ``TRUSTED_TYPES`` as
    the loader does, so a model the functions would refuse fails here instead.
    """
    import mlflow.sklearn
    import sklearn
    import skops
    from mlflow.models import Model

    if serialization_format != "skops":
        raise InvalidSetting("the service loads MLflow models saved with skops; pickle formats are refused by default")
    path = Path(path)
    mlflow.sklearn.save_model(
        sk_model,
        str(path),
        mlflow_model=mlflow_model,
        serialization_format="skops",
        skops_trusted_types=TRUSTED_TYPES,
        pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"],
    )
    table = weight_table_of(sk_model)
    if table is None:
        return
    (path / table_format.FILE_NAME).write_bytes(table.to_bytes())
    model = mlflow_model if mlflow_model is not None else Model.load(str(path))
    model.add_flavor(
        table_format.FLAVOR,
        data=table_format.FILE_NAME,
        format_version=table_format.FORMAT_VERSION,
        features=list(FEATURE_COLUMNS),
    )
    model.save(str(path / "MLmodel"))
