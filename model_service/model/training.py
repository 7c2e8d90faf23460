"""Train the ride models on TLC trips and track them in MLflow: duration (``ride-duration``) and cost (``ride-cost``).

The course's recipe, unchanged, for each target: January trains, February
validates, features from ``model_service.model.features``, a DictVectorizer in
front of the regressor, all in one sklearn pipeline so the logged model takes
feature dicts directly. Each target learns from the trips ``trips.learnable``
keeps for it, and each model carries its target in its metadata.

The model is logged as MLflow's sklearn flavour saved with skops (never
pickle) and, for the linear family, with its weight table beside it in the
same model directory (a flavour of its own in MLmodel), which the functions
serve with numpy alone. This module is that flavour's ``save_model``, as
``mlflow.models.Model.log`` expects of a flavour module.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_service.errors import BadInputFile, InvalidSetting, InvalidWeightTable
from model_service.model import weight_table as table_format
from model_service.model.aliases import AliasMove, assign_new_version
from model_service.model.features import FEATURE_COLUMNS, features_for_frame
from model_service.model.load import TRUSTED_TYPES
from model_service.model.target import COST, DURATION, METADATA_KEY, Target
from model_service.trips import learnable, read_training_trips

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

MODEL_TYPES = ("linear", "random-forest")
EXACTNESS = 1e-9
"""Largest difference (in the target's unit) allowed between the weight table and scikit-learn on validation trips."""


@dataclass(frozen=True)
class Recipe:
    """What training makes for one target: the model's registered name (also its MLflow experiment's)."""

    target: Target
    registered_name: str


RECIPES = {recipe.target.name: recipe for recipe in (Recipe(DURATION, "ride-duration"), Recipe(COST, "ride-cost"))}
"""The models the training command makes, by target name: duration and cost."""
RECIPES_BY_NAME = {recipe.registered_name: recipe for recipe in RECIPES.values()}
"""The same, by registered name: ride-duration, ride-cost."""


@dataclass(frozen=True)
class TrainingResult:
    recipe: Recipe
    run_id: str
    rmse: float
    """The validation RMSE, in the target's unit."""
    mean_rmse: float
    """The validation RMSE of predicting the training trips' mean for every trip: what the model must beat."""
    train_trips: int
    val_trips: int
    model_uri: str
    """What to set MODEL_URI to: the registered version, or the run's model."""
    registered_version: str | None
    alias: AliasMove | None = None
    """The alias the registered version got: ``champion`` for a model's first, ``challenger`` after."""


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
    targets: Sequence[str] = tuple(RECIPES),
    model_type: str = "linear",
    tracking_uri: str,
    register: bool = True,
) -> list[TrainingResult]:
    """Train, log and register one model per target on the same trips: January trains, February validates."""
    unknown = [name for name in targets if name not in RECIPES]
    if unknown or not targets:
        raise InvalidSetting(f"unknown target {unknown or targets}; choose from {', '.join(RECIPES)}")
    train_trips = read_training_trips(train_path)
    val_trips = read_training_trips(val_path)
    return [
        _train_one(RECIPES[name], train_path, train_trips, val_path, val_trips, model_type, tracking_uri, register)
        for name in targets
    ]


def _train_one(
    recipe: Recipe,
    train_path: str,
    all_train_trips: pd.DataFrame,
    val_path: str,
    all_val_trips: pd.DataFrame,
    model_type: str,
    tracking_uri: str,
    register: bool,
) -> TrainingResult:
    import mlflow
    import numpy as np
    from sklearn.metrics import root_mean_squared_error

    target = recipe.target
    train_trips = learnable(all_train_trips, target.actual)
    val_trips = learnable(all_val_trips, target.actual)
    for path, trips in ((train_path, train_trips), (val_path, val_trips)):
        if trips.empty:
            raise BadInputFile(path, f"no trips of 1 to 60 minutes with a {target.actual} to learn {target.name} from")

    pipeline = build_pipeline(model_type)
    pipeline.fit(features_for_frame(train_trips), train_trips[target.actual].to_numpy())
    actual = val_trips[target.actual].to_numpy()
    val_predictions = pipeline.predict(features_for_frame(val_trips))
    rmse = float(root_mean_squared_error(actual, val_predictions))
    mean_rmse = float(root_mean_squared_error(actual, np.full(len(actual), train_trips[target.actual].mean())))
    check_weight_table(pipeline, val_trips, val_predictions)

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(recipe.registered_name)
    with mlflow.start_run() as run:
        mlflow.log_params(
            {
                "target": target.name,
                "model_type": model_type,
                "train_data": train_path,
                "val_data": val_path,
                "train_trips": len(train_trips),
                "val_trips": len(val_trips),
            }
        )
        mlflow.log_metrics({"rmse": rmse, "mean_rmse": mean_rmse})
        info = log_model(pipeline, target, registered_model_name=recipe.registered_name if register else None)
    version = str(info.registered_model_version) if register and info.registered_model_version else None
    model_uri = f"models:/{recipe.registered_name}/{version}" if version else f"runs:/{run.info.run_id}/model"
    alias = assign_new_version(recipe.registered_name, version, tracking_uri) if version else None
    return TrainingResult(
        recipe, run.info.run_id, rmse, mean_rmse, len(train_trips), len(val_trips), model_uri, version, alias
    )


def log_model(pipeline: Pipeline, target: Target, registered_model_name: str | None = None) -> Any:
    """Log the fitted pipeline as the active run's ``model`` (with ``save_model`` below); MLflow's ModelInfo."""
    from mlflow.models import Model

    return Model.log(
        artifact_path=None,
        name="model",
        flavor=sys.modules[__name__],
        flavor_name="sklearn",
        registered_model_name=registered_model_name,
        sk_model=pipeline,
        target=target,
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
        raise InvalidWeightTable(f"the weight table differs from scikit-learn by up to {worst:g}")


def save_model(
    sk_model: Pipeline,
    path: str | Path,
    mlflow_model: Any = None,
    serialization_format: str = "skops",
    target: Target = DURATION,
) -> None:
    """Write ``sk_model`` as an MLflow model directory at ``path``: the sklearn flavour, its weight table, its target.

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
    model = mlflow_model if mlflow_model is not None else Model.load(str(path))
    model.metadata = {**(model.metadata or {}), METADATA_KEY: target.as_metadata()}
    table = weight_table_of(sk_model)
    if table is not None:
        (path / table_format.FILE_NAME).write_bytes(table.to_bytes())
        model.add_flavor(
            table_format.FLAVOR,
            data=table_format.FILE_NAME,
            format_version=table_format.FORMAT_VERSION,
            features=list(FEATURE_COLUMNS),
        )
    model.save(str(path / "MLmodel"))
