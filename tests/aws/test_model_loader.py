"""MODEL_URI: every place a model can live loads the same way; unsafe or unusable models are refused, naming it."""

import builtins
import hashlib
import pickle
import re
import shutil

import boto3
import numpy as np
import pytest
import yaml

from model_service.errors import ModelLoadError, UnsafeModel, UnusableModel
from model_service.model import weight_table
from model_service.model.features import features_for_frame
from model_service.model.load import load_model
from model_service.model.target import COST, DURATION
from model_service.model.weight_table import FILE_NAME, WeightTable
from model_service.sample_data import make_trips
from tests.conftest import shared_path
from tests.factories import RunsCodeWhenUnpickled

RIDE = (130, 205, 3.66)


def predict_one(model, ride=RIDE) -> float:
    return float(model.predictor.predict(*(np.array([value]) for value in ride))[0])


def edit_mlmodel(model_dir, edit) -> None:
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    edit(mlmodel)
    (model_dir / "MLmodel").write_text(yaml.safe_dump(mlmodel))


def copy_of(model_dir, tmp_path):
    return shutil.copytree(model_dir, tmp_path / "model")


@pytest.mark.shared_data
def test_course_lin_reg_bin_predicts_the_course_figures_from_its_weight_table():
    model = load_model(str(shared_path("models/lin_reg.bin")), allow_pickle=True)
    assert model.description == "weight table of a LinearRegression"
    assert predict_one(model) == pytest.approx(12.7855, abs=1e-4)
    assert predict_one(model, (10, 50, 40.0)) == pytest.approx(26.4388, abs=1e-4)


@pytest.mark.shared_data
def test_course_mlflow_forest_saved_with_cloudpickle_is_refused_naming_the_setting():
    uri = str(shared_path("models/course-mlflow-rf"))
    with pytest.raises(UnsafeModel) as raised:
        load_model(uri)
    message = str(raised.value)
    assert "cloudpickle" in message
    assert "MODEL_ALLOW_PICKLE=true" in message
    assert uri in message


@pytest.mark.shared_data
def test_course_mlflow_forest_allowed_to_unpickle_fails_naming_both_sklearn_versions_and_the_fix():
    import sklearn

    with pytest.raises(ModelLoadError) as raised:
        load_model(str(shared_path("models/course-mlflow-rf")), allow_pickle=True)
    message = str(raised.value)
    assert "scikit-learn 1.0.2" in message
    assert f"scikit-learn {sklearn.__version__}" in message
    assert "python -m model_service train" in message
    assert "course-mlflow-rf" in message
    assert "expected:" not in message, "the raw dtype dump belongs in the cause, not the message"


def test_model_bin_version_is_a_short_sha256_of_the_file(model_bin):
    assert (
        load_model(str(model_bin), allow_pickle=True).version == hashlib.sha256(model_bin.read_bytes()).hexdigest()[:12]
    )


def test_model_version_setting_overrides_the_derived_version(model_bin):
    assert load_model(str(model_bin), version="2024-06-01", allow_pickle=True).version == "2024-06-01"


def test_trained_mlflow_model_is_served_from_its_weight_table_with_its_model_id(mlflow_model_dir, model_bin):
    model = load_model(str(mlflow_model_dir))
    assert model.description == "weight table (numpy)"
    assert predict_one(model) == pytest.approx(predict_one(load_model(str(model_bin), allow_pickle=True)), abs=1e-9)
    assert model.version == yaml.safe_load((mlflow_model_dir / "MLmodel").read_text())["model_uuid"]


def test_a_forest_is_read_with_skops_and_served_by_scikit_learn(forest_model_dir, fitted_forest):
    model = load_model(str(forest_model_dir))
    assert model.description == "scikit-learn RandomForestRegressor"
    trips = make_trips(200, seed=9)
    columns = [trips[c].to_numpy() for c in ("PULocationID", "DOLocationID", "trip_distance")]
    assert np.array_equal(model.predictor.predict(*columns), fitted_forest.predict(features_for_frame(trips)))


def test_an_mlflow_model_saved_with_pickle_is_refused_unless_allowed(tmp_path, fitted_pipeline, model_bin):
    import mlflow.sklearn

    path = tmp_path / "pickled"
    mlflow.sklearn.save_model(fitted_pipeline, str(path), serialization_format="pickle", pip_requirements=[])
    with pytest.raises(UnsafeModel, match=r"saved with pickle.*MODEL_ALLOW_PICKLE=true"):
        load_model(str(path))
    allowed = load_model(str(path), allow_pickle=True)
    assert predict_one(allowed) == pytest.approx(predict_one(load_model(str(model_bin), allow_pickle=True)), abs=1e-9)


def test_a_pickle_in_an_mlflow_model_is_never_read_without_the_setting(tmp_path, forest_model_dir):
    model = copy_of(forest_model_dir, tmp_path)
    evidence = tmp_path / "code-ran"
    (model / "model.pkl").write_bytes(pickle.dumps(RunsCodeWhenUnpickled(evidence)))
    edit_mlmodel(
        model, lambda m: m["flavors"]["sklearn"].update(pickled_model="model.pkl", serialization_format="cloudpickle")
    )
    with pytest.raises(UnsafeModel):
        load_model(str(model))
    assert not evidence.exists()


def evil_pickle(path, evidence):
    path.write_bytes(pickle.dumps(RunsCodeWhenUnpickled(evidence)))
    return path


@pytest.mark.parametrize("name", ["model.bin", "model.pkl", "weights.npz", "model"])
def test_a_single_file_is_refused_unread_whatever_its_name_unless_pickle_is_allowed(tmp_path, name):
    evidence = tmp_path / "code-ran"
    path = evil_pickle(tmp_path / name, evidence)
    with pytest.raises(UnsafeModel, match=re.escape(str(path)) + r".*single file.*MODEL_ALLOW_PICKLE=true"):
        load_model(str(path))
    assert not evidence.exists()


@pytest.mark.parametrize("key", ["ride-duration/model.bin", "ride-duration/model.pkl", "ride-duration/m.pickle"])
def test_a_pickle_in_s3_is_refused_unread_unless_pickle_is_allowed(aws, tmp_path, key):
    evidence = tmp_path / "code-ran"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key=key, Body=pickle.dumps(RunsCodeWhenUnpickled(evidence)))
    with pytest.raises(UnsafeModel, match="MODEL_ALLOW_PICKLE=true"):
        load_model(f"s3://models/{key}")
    assert not evidence.exists()


def test_a_pickle_logged_to_a_run_is_refused_unread_unless_pickle_is_allowed(registry, tmp_path):
    import mlflow

    evidence = tmp_path / "code-ran"
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(evil_pickle(tmp_path / "model.bin", evidence)))
    with pytest.raises(UnsafeModel, match="MODEL_ALLOW_PICKLE=true"):
        load_model(f"runs:/{run.info.run_id}/model.bin")
    assert not evidence.exists()


def test_a_version_longer_than_events_may_carry_fails_start_up_naming_the_setting(mlflow_model_dir):
    with pytest.raises(ModelLoadError, match=r"version of 257 characters; events carry at most 256.*MODEL_VERSION"):
        load_model(str(mlflow_model_dir), version="v" * 257)


def test_a_version_of_256_characters_is_served(mlflow_model_dir):
    assert load_model(str(mlflow_model_dir), version="v" * 256).version == "v" * 256


def test_skops_types_outside_the_projects_list_are_refused_whatever_mlmodel_trusts(tmp_path, forest_model_dir):
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    model = copy_of(forest_model_dir, tmp_path)
    (model / "model.skops").write_bytes(skops.io.dumps(FunctionTransformer(func=builtins.eval)))
    edit_mlmodel(model, lambda m: m["flavors"]["sklearn"].update(skops_trusted_types=["builtins.eval"]))
    with pytest.raises(UnsafeModel, match=r"does not trust .*builtins\.eval"):
        load_model(str(model))


def test_an_artifact_that_loads_as_the_integer_0_fails_start_up_naming_the_uri(tmp_path, forest_model_dir):
    import skops.io

    model = copy_of(forest_model_dir, tmp_path)
    (model / "model.skops").write_bytes(skops.io.dumps(0))
    with pytest.raises(
        UnusableModel, match=re.escape(str(model)) + r".*cannot predict rides: it holds an object of type int"
    ):
        load_model(str(model))


def test_a_pickled_model_bin_of_something_else_fails_start_up_naming_the_uri(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(
        UnusableModel, match=re.escape(str(path)) + r".*holds an object of type dict, not a DictVectorizer"
    ):
        load_model(str(path), allow_pickle=True)


def test_a_model_predicting_nonsense_for_the_sample_ride_fails_start_up_naming_the_uri(tmp_path, mlflow_model_dir):
    model = copy_of(mlflow_model_dir, tmp_path)
    table = WeightTable.from_bytes((model / FILE_NAME).read_bytes())
    (model / FILE_NAME).write_bytes(WeightTable(1e6, table.distance_weight, table.pair_weights).to_bytes())
    with pytest.raises(UnusableModel, match=re.escape(str(model)) + r".*not one duration from 0 to 1440 minutes"):
        load_model(str(model))


def npz_bytes(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_weight_table_with_a_nan_weight_off_the_smoke_tests_pair_is_refused_at_start_up(tmp_path, mlflow_model_dir):
    model = copy_of(mlflow_model_dir, tmp_path)
    table = WeightTable.from_bytes((model / FILE_NAME).read_bytes())
    pair_weights = table.pair_weights.copy()
    pair_weights[7, 8] = np.nan  # a pair the sample ride (130 -> 205) never reads
    (model / FILE_NAME).write_bytes(
        npz_bytes(
            intercept=np.float64(table.intercept),
            distance_weight=np.float64(table.distance_weight),
            pair_weights=pair_weights,
        )
    )
    with pytest.raises(ModelLoadError, match=re.escape(str(model)) + ".*pair_weights holds NaN or infinite weights"):
        load_model(str(model))


@pytest.mark.parametrize("name", ["../../outside.npz", "/etc/passwd"])
def test_mlmodel_naming_a_file_outside_the_model_is_refused(tmp_path, mlflow_model_dir, name):
    model = copy_of(mlflow_model_dir, tmp_path)
    edit_mlmodel(model, lambda m: m["flavors"][weight_table.FLAVOR].update(data=name))
    with pytest.raises(UnsafeModel, match="not a file inside the model"):
        load_model(str(model))


def test_missing_model_fails_naming_the_uri(tmp_path):
    missing = tmp_path / "nope" / "model.bin"
    with pytest.raises(ModelLoadError, match=re.escape("nope/model.bin")):
        load_model(str(missing))


def test_directory_without_mlmodel_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="without an MLmodel file"):
        load_model(str(tmp_path))


def test_corrupt_pickle_fails_naming_the_uri(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"definitely not a pickle")
    with pytest.raises(ModelLoadError, match=str(path)):
        load_model(str(path), allow_pickle=True)


def upload_dir(model_dir, bucket, prefix, skip=()):
    s3 = boto3.client("s3")
    for path in model_dir.rglob("*"):
        if path.is_file() and path.name not in skip:
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(model_dir)}")


def test_model_bin_loads_from_s3(aws, model_bin):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(model_bin), "models", "ride-duration/model.bin")
    model = load_model("s3://models/ride-duration/model.bin", allow_pickle=True)
    assert predict_one(model) == pytest.approx(predict_one(load_model(str(model_bin), allow_pickle=True)))


def test_a_weight_table_model_loads_from_s3_without_its_scikit_learn_files(aws, mlflow_model_dir):
    boto3.client("s3").create_bucket(Bucket="models")
    upload_dir(mlflow_model_dir, "models", "ride-duration/1", skip={"model.skops"})
    model = load_model("s3://models/ride-duration/1")
    assert model.description == "weight table (numpy)"
    assert predict_one(model) == pytest.approx(predict_one(load_model(str(mlflow_model_dir))))


def test_a_forest_loads_from_an_s3_prefix(aws, forest_model_dir):
    boto3.client("s3").create_bucket(Bucket="models")
    upload_dir(forest_model_dir, "models", "runs/abc/artifacts/model")
    model = load_model("s3://models/runs/abc/artifacts/model/")
    assert predict_one(model) == pytest.approx(predict_one(load_model(str(forest_model_dir))))


def test_empty_s3_prefix_fails_naming_the_uri_and_the_missing_mlmodel(aws):
    boto3.client("s3").create_bucket(Bucket="models")
    with pytest.raises(
        ModelLoadError, match=r"Cannot load the model at MODEL_URI='s3://models/missing/model'.*MLmodel"
    ):
        load_model("s3://models/missing/model")


def test_registered_model_version_uri_reports_the_version(registry):
    assert load_model("models:/ride-duration/1").version == "1"


def test_registered_model_alias_uri_reports_the_version_it_points_to(registry):
    assert load_model("models:/ride-duration@champion").version == "1"


def test_runs_uri_reports_the_run_id(registry):
    model = load_model(f"runs:/{registry}/model")
    assert model.version == registry
    assert model.description == "weight table (numpy)"


def test_unknown_registered_model_fails_naming_the_uri(registry):
    with pytest.raises(ModelLoadError, match="models:/no-such-model/1"):
        load_model("models:/no-such-model/1")


def test_a_model_says_what_it_predicts_and_a_course_model_bin_predicts_duration(cost_model_dir, model_bin):
    assert load_model(str(cost_model_dir)).target == COST
    assert load_model(str(model_bin), allow_pickle=True).target == DURATION


def test_a_model_logged_before_targets_existed_predicts_duration(mlflow_model_dir, tmp_path):
    model = copy_of(mlflow_model_dir, tmp_path)
    edit_mlmodel(model, lambda m: m.pop("metadata"))
    assert load_model(str(model)).target == DURATION


def test_metadata_that_is_not_a_target_is_refused_naming_the_uri(cost_model_dir, tmp_path):
    model = copy_of(cost_model_dir, tmp_path)
    edit_mlmodel(model, lambda m: m["metadata"]["ride_target"].update(name="Cost!"))
    with pytest.raises(ModelLoadError, match=re.escape(str(model)) + ".*lower-case letters"):
        load_model(str(model))


def test_a_model_is_held_to_its_own_targets_range_at_start_up(cost_model_dir, tmp_path):
    model = copy_of(cost_model_dir, tmp_path)
    edit_mlmodel(model, lambda m: m["metadata"]["ride_target"].update(high=1.0))
    with pytest.raises(UnusableModel, match=r"USD for the ride 130 -> 205.*not one cost from 0 to 1 USD"):
        load_model(str(model))
