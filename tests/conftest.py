"""Shared fixtures: small real models trained on generated trips, AWS mocks, the course's files."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_service.model.features import features_for_frame
from model_service.sample_data import make_trips
from model_service.trips import add_duration
from tests.mlflow_store import registered_champion

PREDICTIONS = "ride_predictions"
DEAD_LETTERS = "ride_dead_letters"
DECISIONS = "ride_decisions"

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
    from model_service.model.training import build_pipeline

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


@pytest.fixture(scope="module")
def service(mlflow_model_dir):
    """A duration model as training logs it, loaded as every adapter loads it (modules that need a version define
    their own)."""
    from model_service.service import PredictionService

    return PredictionService.load(str(mlflow_model_dir))


def saved_as_training_logs(pipeline, directory: Path, target=None) -> Path:
    from model_service.model.target import DURATION
    from model_service.model.training import save_model

    save_model(pipeline, directory / "model", target=target or DURATION)
    return directory / "model"


@pytest.fixture(scope="session")
def mlflow_model_dir(tmp_path_factory, fitted_pipeline) -> Path:
    """An MLflow model directory as training logs it: sklearn flavour (skops) and the weight table."""
    return saved_as_training_logs(fitted_pipeline, tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="session")
def cost_model_dir(tmp_path_factory, training_trips) -> Path:
    """A cost model as training logs it: fitted on the fares, its target (cost) in its metadata."""
    from model_service.model.target import COST
    from model_service.model.training import build_pipeline

    pipeline = build_pipeline("linear")
    pipeline.fit(features_for_frame(training_trips), training_trips["fare_amount"].to_numpy())
    return saved_as_training_logs(pipeline, tmp_path_factory.mktemp("cost"), COST)


@pytest.fixture(scope="session")
def consumer_models(mlflow_model_dir, cost_model_dir) -> dict[str, Path]:
    """The model each consumer of the ride stream serves, by consumer: duration and cost, as training logs them."""
    return {"duration": mlflow_model_dir, "cost": cost_model_dir}


@pytest.fixture(scope="session")
def fitted_forest(training_trips):
    from sklearn.ensemble import RandomForestRegressor

    from model_service.model.training import build_pipeline

    pipeline = build_pipeline("random-forest")
    pipeline.set_params(randomforestregressor=RandomForestRegressor(n_estimators=5, max_depth=8, random_state=0))
    return pipeline.fit(features_for_frame(training_trips), training_trips["duration"].to_numpy())


@pytest.fixture(scope="session")
def forest_model_dir(tmp_path_factory, fitted_forest) -> Path:
    """An MLflow model directory of a random forest: no weight table, scikit-learn serves it."""
    return saved_as_training_logs(fitted_forest, tmp_path_factory.mktemp("forest"))


@pytest.fixture(scope="module")
def registry(tmp_path_factory, fitted_pipeline):
    """A local MLflow tracking store with the pipeline logged by training's flavour, registered, aliased champion.

    Built once per test module; yields the run id. MLFLOW_TRACKING_URI points at it meanwhile.
    """
    with registered_champion(fitted_pipeline, tmp_path_factory.mktemp("registry")) as run_id:
        yield run_id


@pytest.fixture(scope="session")
def weak_pipeline(training_trips):
    """A duration model fitted on 60 trips and the wrong trips' durations: a challenger that loses on any month."""
    from model_service.model.training import build_pipeline

    few = training_trips.head(60)
    return build_pipeline("linear").fit(features_for_frame(few), few["duration"].to_numpy()[::-1])


@pytest.fixture
def challenged_registry(tmp_path, monkeypatch, fitted_pipeline, weak_pipeline):
    """A fresh MLflow store (MLFLOW_TRACKING_URI, working directory) where ride-duration was registered twice as
    training registers: version 1 (``fitted_pipeline``) the champion, version 2 (``weak_pipeline``) its challenger.

    Yields the store's client and the two alias moves training made.
    """
    import mlflow

    from model_service.model.aliases import assign_new_version
    from model_service.model.target import DURATION
    from model_service.model.training import log_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("ride-duration")
    moves = []
    for pipeline in (fitted_pipeline, weak_pipeline):
        with mlflow.start_run():
            info = log_model(pipeline, DURATION, registered_model_name="ride-duration")
        moves.append(assign_new_version("ride-duration", str(info.registered_model_version), uri))
    return mlflow.MlflowClient(uri), moves


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


@pytest.fixture
def kinesis(aws):
    """moto's Kinesis with the output, decision and dead-letter streams the functions write to.

    The client is configured as the functions' own (one attempt per call, short timeouts).
    """
    from model_service.config import Settings
    from model_service.kinesis.publish import kinesis_client

    client = kinesis_client(Settings())
    for stream in (PREDICTIONS, DEAD_LETTERS, DECISIONS):
        client.create_stream(StreamName=stream, ShardCount=1)
    return client


@pytest.fixture
def build_function(kinesis, mlflow_model_dir):
    """A stream function built as a new Lambda container builds it at import: from the environment's settings.

    ``build("prediction", TEST_RUN="true")``: the variables given override the tests' defaults.
    """
    from model_service.config import Settings
    from model_service.kinesis.function import decision_function, prediction_function

    def build(kind: str, **env: str):
        environ = {
            "MODEL_URI": str(mlflow_model_dir),
            "PREDICTIONS_STREAM_NAME": PREDICTIONS,
            "DEAD_LETTER_STREAM_NAME": DEAD_LETTERS,
            "DECISIONS_STREAM_NAME": DECISIONS,
            "TEST_RUN": "false",
            **env,
        }
        factory = {"prediction": prediction_function, "decision": decision_function}[kind]
        return factory(Settings.from_env(environ))

    return build
