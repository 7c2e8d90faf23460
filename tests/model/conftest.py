"""The models the behaviour tests hold to account: the course's own, and one this project trains on the same month.

Both need the course's files in ../shared, and skip with a reason without them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from model_service.service import PredictionService
from model_service.trips import clean_ids
from tests.conftest import shared_path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def course_model() -> PredictionService:
    return PredictionService.load(str(shared_path("models/lin_reg.bin")), allow_pickle=True)


@pytest.fixture(scope="session")
def project_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PredictionService]:
    """Trained by ``python -m model_service train`` on January 2021, loaded from MLflow as the functions load them.

    Both targets, by name. Trained in its own process, so that MLflow's
    process-wide state (active experiment, tracking URI) stays as the other
    tests expect it.
    """
    root = tmp_path_factory.mktemp("model-behaviour")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "model_service", "train"]
    command += ["--train", str(shared_path("data/green_tripdata_2021-01.parquet"))]
    command += ["--val", str(shared_path("data/green_tripdata_2021-02.parquet"))]
    out = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=True).stdout
    uris = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("MODEL_URIS="))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        models = [PredictionService.load(uri, tracking_uri=env["MLFLOW_TRACKING_URI"]) for uri in uris.split(",")]
    return {model.target.name: model for model in models}


@pytest.fixture(
    scope="session", params=["course lin_reg.bin", "duration trained here on 2021-01", "cost trained here on 2021-01"]
)
def model(request: pytest.FixtureRequest, project_models: dict[str, PredictionService]) -> PredictionService:
    """Every model the behaviour tests hold to account."""
    if request.param == "course lin_reg.bin":
        return course_model()
    return project_models[request.param.split()[0]]


@pytest.fixture(scope="session", params=["course lin_reg.bin", "duration trained here on 2021-01"])
def duration_model(request: pytest.FixtureRequest, project_models: dict[str, PredictionService]) -> PredictionService:
    """The duration models: the course's, and the one trained here by the course's procedure."""
    return course_model() if request.param == "course lin_reg.bin" else project_models["duration"]


@pytest.fixture(scope="session")
def february_rides() -> list[dict]:
    """2,000 real rides of February 2021, as valid ride dicts (zones present, distance within the schema)."""
    trips = pd.read_parquet(shared_path("data/green_tripdata_2021-02.parquet"))
    trips = clean_ids(trips).dropna(subset=["trip_distance"])
    trips = trips[trips["trip_distance"].between(0, 500)].sample(2000, random_state=0)
    return [
        {"PULocationID": int(pu), "DOLocationID": int(do), "trip_distance": float(distance)}
        for pu, do, distance in zip(trips["PULocationID"], trips["DOLocationID"], trips["trip_distance"], strict=True)
    ]
