"""The models the behaviour tests hold to account: the course's own, and one this project trains on the same month.

Both need the course's files in ../shared, and skip with a reason without them.
"""

from __future__ import annotations

import pandas as pd
import pytest

from model_service.service import PredictionService
from model_service.trips import clean_ids
from tests.conftest import shared_path


def course_model() -> PredictionService:
    return PredictionService.load(str(shared_path("models/lin_reg.bin")))


def project_model(tmp_path_factory: pytest.TempPathFactory) -> PredictionService:
    """Trained by the project's training path on January 2021, loaded from MLflow as the functions load it."""
    import mlflow

    from model_service.training import train

    root = tmp_path_factory.mktemp("model-behaviour")
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = train(
            str(shared_path("data/green_tripdata_2021-01.parquet")),
            str(shared_path("data/green_tripdata_2021-02.parquet")),
            tracking_uri=tracking,
        )
        try:
            return PredictionService.load(result.model_uri)
        finally:
            mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session", params=["course lin_reg.bin", "trained here on 2021-01"])
def model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PredictionService:
    if request.param == "course lin_reg.bin":
        return course_model()
    return project_model(tmp_path_factory)


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
