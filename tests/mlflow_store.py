"""A local MLflow tracking store holding models as training registers them, for the tests of models:/ URIs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@contextmanager
def registered_champion(pipeline: Any, root: Path, cost_pipeline: Any = None) -> Iterator[str]:
    """``pipeline`` logged by training's flavour, registered as ride-duration and aliased champion, in ``root``.

    With ``cost_pipeline``, that one too, as ride-cost. Yields the duration
    model's run id; meanwhile MLFLOW_TRACKING_URI and the working directory
    (where MLflow writes artifacts) point at the store.
    """
    import mlflow

    from model_service.model.target import COST, DURATION
    from model_service.model.training import log_model

    uri = f"sqlite:///{root / 'mlflow.db'}"
    models = [("ride-duration", pipeline, DURATION)] + ([("ride-cost", cost_pipeline, COST)] if cost_pipeline else [])
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        run_ids = []
        for name, fitted, target in models:
            mlflow.set_experiment(name)  # not the experiment id another store made current
            with mlflow.start_run() as run:
                info = log_model(fitted, target, registered_model_name=name)
            mlflow.MlflowClient().set_registered_model_alias(name, "champion", info.registered_model_version)
            run_ids.append(run.info.run_id)
        yield run_ids[0]
