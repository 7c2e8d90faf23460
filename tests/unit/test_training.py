"""Training: TLC parquet in, an MLflow-tracked, registered model out, servable by MODEL_URI."""

import numpy as np
import pytest

from model_service.cli import main
from model_service.errors import InvalidWeightTable
from model_service.model.features import features_for_frame
from model_service.model.load import load_model
from model_service.model.training import train as train_model
from model_service.sample_data import make_trips
from model_service.trips import read_training_trips
from tests.conftest import shared_path
from tests.factories import feature_columns


@pytest.fixture
def trip_files(tmp_path):
    train, val = tmp_path / "train.parquet", tmp_path / "val.parquet"
    make_trips(3000, seed=1).to_parquet(train)
    make_trips(1000, seed=2, start="2021-02-01").to_parquet(val)
    return str(train), str(val)


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_keeps_only_trips_of_one_to_sixty_minutes(tmp_path):
    trips = make_trips(100)
    trips.loc[0, "lpep_dropoff_datetime"] = trips.loc[0, "lpep_pickup_datetime"]  # 0 minutes
    trips.loc[1, "lpep_dropoff_datetime"] = trips.loc[1, "lpep_pickup_datetime"] + __import__("pandas").Timedelta(
        hours=3
    )
    trips.to_parquet(tmp_path / "t.parquet")
    kept = read_training_trips(str(tmp_path / "t.parquet"))
    assert kept["duration"].between(1, 60).all()
    assert 0 not in kept.index
    assert 1 not in kept.index


def test_reads_files_with_int32_and_nullable_ids(tmp_path):
    trips = make_trips(50).astype({"PULocationID": "int32", "DOLocationID": "float64"})
    trips.loc[3, "DOLocationID"] = None
    trips.to_parquet(tmp_path / "t.parquet")
    kept = read_training_trips(str(tmp_path / "t.parquet"))
    assert str(kept["DOLocationID"].dtype) == "int64"
    assert 3 not in kept.index


def test_train_command_logs_registers_and_prints_the_model_uri(trip_files, tracking, capsys):
    import mlflow

    assert main(["train", "--train", trip_files[0], "--val", trip_files[1]]) == 0
    out = capsys.readouterr().out
    assert "MODEL_URI=models:/ride-duration/1" in out

    run_id = out.split("run_id:")[1].split()[0]
    run = mlflow.MlflowClient(tracking).get_run(run_id)
    assert run.data.params["model_type"] == "linear"
    assert run.data.metrics["rmse"] == pytest.approx(float(out.split("val_rmse:")[1].split()[0]), abs=1e-6)
    assert load_model("models:/ride-duration/1").version == "1"


def test_random_forest_option_trains_a_servable_model(trip_files, tracking, capsys):
    assert main(["train", "--train", trip_files[0], "--val", trip_files[1], "--model", "random-forest"]) == 0
    assert "MODEL_URI=models:/ride-duration/1" in capsys.readouterr().out


def test_missing_input_file_is_a_clear_error(tmp_path, tracking, capsys):
    assert main(["train", "--train", str(tmp_path / "nope.parquet"), "--val", str(tmp_path / "nope.parquet")]) == 2
    assert "nope.parquet" in capsys.readouterr().err


@pytest.fixture(scope="module")
def course_months_training(tmp_path_factory):
    """The course's recipe on the real January and February files, logged once for the tests below."""
    train = shared_path("data/green_tripdata_2021-01.parquet")
    val = shared_path("data/green_tripdata_2021-02.parquet")
    root = tmp_path_factory.mktemp("course-months")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        result = train_model(str(train), str(val), tracking_uri=f"sqlite:///{root / 'mlflow.db'}", register=False)
        yield result, val


@pytest.mark.shared_data
def test_course_months_reproduce_the_course_validation_rmse(course_months_training):
    result, _ = course_months_training
    assert f"{result.rmse:.6f}" == "7.758715"


@pytest.mark.shared_data
def test_on_the_real_february_the_served_model_predicts_what_scikit_learn_predicts(course_months_training):
    result, val = course_months_training
    description, difference = served_against_sklearn(result.model_uri, str(val))
    assert description == "weight table (numpy)"
    assert difference <= 1e-9


def served_against_sklearn(model_uri: str, val_path: str) -> tuple[str, float]:
    """What serves the model as the functions load it, and its largest difference in minutes, on the trips of
    ``val_path``, from the scikit-learn pipeline logged beside it."""
    import mlflow
    import skops.io

    from model_service.model.load import TRUSTED_TYPES

    model_dir = mlflow.artifacts.download_artifacts(model_uri)
    pipeline = skops.io.load(f"{model_dir}/model.skops", trusted=TRUSTED_TYPES)
    served = load_model(model_dir)
    trips = read_training_trips(val_path)
    expected = pipeline.predict(features_for_frame(trips))
    return served.description, float(np.max(np.abs(served.predictor.predict(*feature_columns(trips)) - expected)))


def test_a_trained_linear_model_is_served_from_a_weight_table_equal_to_its_pipeline(trip_files, tracking):
    result = train_model(*trip_files, tracking_uri=tracking, register=False)
    description, difference = served_against_sklearn(result.model_uri, trip_files[1])
    assert description == "weight table (numpy)"
    assert difference <= 1e-9


def test_a_trained_random_forest_has_no_weight_table_and_is_served_by_scikit_learn(trip_files, tracking):
    result = train_model(*trip_files, model_type="random-forest", tracking_uri=tracking, register=False)
    description, difference = served_against_sklearn(result.model_uri, trip_files[1])
    assert description == "scikit-learn RandomForestRegressor"
    # Not to the bit: the forest averages its trees in parallel, in no fixed order.
    assert difference <= 1e-9


def test_a_weight_table_that_drifts_from_scikit_learn_is_never_logged(trip_files, tracking, monkeypatch):
    from model_service.model import weight_table

    original = weight_table.WeightTable.predict
    monkeypatch.setattr(weight_table.WeightTable, "predict", lambda self, *cols: original(self, *cols) + 1e-6)
    with pytest.raises(InvalidWeightTable, match="differs from scikit-learn"):
        train_model(*trip_files, tracking_uri=tracking, register=False)
