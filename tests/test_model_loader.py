"""MODEL_URI: every place a model can live loads the same way, and failures say what to fix."""

import hashlib
import pickle
import re

import boto3
import pytest

from model_service.errors import ModelLoadError
from model_service.model_loader import load_model
from model_service.schema import validate_ride
from tests.conftest import shared_path

RIDE = {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}


def predict_one(model, ride=RIDE) -> float:
    from model_service.features import features_for_rides

    return float(model.predictor.predict(features_for_rides([validate_ride(ride)]))[0])


@pytest.mark.shared_data
def test_course_lin_reg_bin_predicts_the_course_figures():
    model = load_model(str(shared_path("models/lin_reg.bin")))
    assert predict_one(model) == pytest.approx(12.7855, abs=1e-4)
    assert predict_one(model, {"PULocationID": 10, "DOLocationID": 50, "trip_distance": 40}) == pytest.approx(
        26.4388, abs=1e-4
    )


@pytest.mark.shared_data
def test_course_mlflow_forest_fails_naming_both_sklearn_versions_and_the_fix():
    import sklearn

    with pytest.raises(ModelLoadError) as raised:
        load_model(str(shared_path("models/course-mlflow-rf")))
    message = str(raised.value)
    assert "scikit-learn 1.0.2" in message
    assert f"scikit-learn {sklearn.__version__}" in message
    assert "python -m model_service train" in message
    assert "course-mlflow-rf" in message
    assert "expected:" not in message, "the raw dtype dump belongs in the cause, not the message"


def test_model_bin_version_is_a_short_sha256_of_the_file(model_bin):
    assert load_model(str(model_bin)).version == hashlib.sha256(model_bin.read_bytes()).hexdigest()[:12]


def test_model_version_setting_overrides_the_derived_version(model_bin):
    assert load_model(str(model_bin), version="2024-06-01").version == "2024-06-01"


def test_local_mlflow_model_directory_loads_with_its_run_id(mlflow_model_dir, model_bin):
    model = load_model(str(mlflow_model_dir))
    assert predict_one(model) == pytest.approx(predict_one(load_model(str(model_bin))))
    assert model.version  # MLmodel written by save_model carries a model uuid


def test_missing_model_fails_naming_the_uri(tmp_path):
    missing = tmp_path / "nope" / "model.bin"
    with pytest.raises(ModelLoadError, match=re.escape("nope/model.bin")):
        load_model(str(missing))


def test_directory_without_mlmodel_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="without an MLmodel file"):
        load_model(str(tmp_path))


def test_pickle_of_something_else_is_refused(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(ModelLoadError, match="not the course's"):
        load_model(str(path))


def test_corrupt_pickle_fails_naming_the_uri(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"definitely not a pickle")
    with pytest.raises(ModelLoadError, match=str(path)):
        load_model(str(path))


def test_model_bin_loads_from_s3(aws, model_bin):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(model_bin), "models", "ride-duration/model.bin")
    model = load_model("s3://models/ride-duration/model.bin")
    assert predict_one(model) == pytest.approx(predict_one(load_model(str(model_bin))))


def test_mlflow_model_directory_loads_from_s3_prefix(aws, mlflow_model_dir):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    for path in mlflow_model_dir.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "models", f"runs/abc/artifacts/model/{path.relative_to(mlflow_model_dir)}")
    model = load_model("s3://models/runs/abc/artifacts/model")
    assert predict_one(model) == pytest.approx(predict_one(load_model(str(mlflow_model_dir))))


def test_empty_s3_prefix_fails_naming_the_uri(aws):
    boto3.client("s3").create_bucket(Bucket="models")
    with pytest.raises(ModelLoadError, match="no objects under"):
        load_model("s3://models/missing/model")


@pytest.fixture(scope="module")
def registry(tmp_path_factory, fitted_pipeline):
    """A local MLflow tracking store with the pipeline logged in one run and registered (built once)."""
    import mlflow

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(
                fitted_pipeline, name="model", registered_model_name="ride-duration", pip_requirements=["scikit-learn"]
            )
        mlflow.MlflowClient().set_registered_model_alias("ride-duration", "champion", info.registered_model_version)
        yield run.info.run_id


def test_registered_model_version_uri_reports_the_version(registry):
    assert load_model("models:/ride-duration/1").version == "1"


def test_registered_model_alias_uri_reports_the_version_it_points_to(registry):
    assert load_model("models:/ride-duration@champion").version == "1"


def test_runs_uri_reports_the_run_id(registry):
    model = load_model(f"runs:/{registry}/model")
    assert model.version == registry
    assert predict_one(model) > 0


def test_unknown_registered_model_fails_naming_the_uri(registry):
    with pytest.raises(ModelLoadError, match="models:/no-such-model/1"):
        load_model("models:/no-such-model/1")
