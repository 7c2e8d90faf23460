"""A local MLflow tracking store holding a model as training registers it, for the tests of models:/ URIs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@contextmanager
def registered_champion(pipeline: Any, root: Path) -> Iterator[str]:
    """``pipeline`` logged by training's flavour, registered as ride-duration and aliased champion, in ``root``.

    Yields the run id; meanwhile MLFLOW_TRACKING_URI and the working directory
    (where MLflow writes artifacts) point at the store.
    """
    import mlflow

    from model_service.model.training import log_model

    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("ride-duration")  # not the experiment id another store made current
        with mlflow.start_run() as run:
            info = log_model(pipeline, registered_model_name="ride-duration")
        mlflow.MlflowClient().set_registered_model_alias("ride-duration", "champion", info.registered_model_version)
        yield run.info.run_id
