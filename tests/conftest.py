"""Shared fixtures: small real models trained on generated trips, AWS mocks, the course's files."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_service.features import features_for_frame
from model_service.trips import add_duration
from tests.factories import make_trips

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(relative: str) -> Path:
    """A file from ../shared, or a skip saying why the test cannot run without it."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared holds the course's real files); this test needs it")
    return path


@pytest.fixture(scope="session")
def training_trips():
    return add_duration(make_trips(2000, seed=1))


@pytest.fixture(scope="session")
def fitted_pipeline(training_trips):
    from model_service.training import build_pipeline

    pipeline = build_pipeline("linear")
    pipeline.fit(features_for_frame(training_trips), training_trips["duration"].to_numpy())
    return pipeline


@pytest.fixture(scope="session")
def model_bin(tmp_path_factory, fitted_pipeline) -> Path:
    """A course-style model.bin: a pickled (DictVectorizer, LinearRegression) tuple."""
    path = tmp_path_factory.mktemp("bin") / "model.bin"
    vectorizer, regressor = (step for _, step in fitted_pipeline.steps)
    path.write_bytes(pickle.dumps((vectorizer, regressor)))
    return path


@pytest.fixture(scope="session")
def mlflow_model_dir(tmp_path_factory, fitted_pipeline) -> Path:
    """An MLflow model directory, as ``mlflow.sklearn.save_model`` writes it."""
    import mlflow.sklearn

    path = tmp_path_factory.mktemp("mlflow") / "model"
    mlflow.sklearn.save_model(fitted_pipeline, str(path), pip_requirements=["scikit-learn"])
    return path


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    """moto's in-process AWS, with fake credentials so nothing can reach a real account."""
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield
