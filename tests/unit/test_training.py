"""Training: TLC parquet in, an MLflow-tracked, registered model out, servable by MODEL_URI."""

import numpy as np
import pytest

from model_service.cli import main
from model_service.errors import InvalidWeightTable
from model_service.model.features import features_for_frame
from model_service.model.load import load_model
from model_service.model.target import COST, DURATION
from model_service.model.training import train as train_model
from model_service.sample_data import make_trips
from model_service.trips import learnable, read_training_trips
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


def test_fares_a_meter_could_not_have_charged_are_not_learned_from_but_their_durations_are(tmp_path):
    trips = make_trips(12)
    trips["fare_amount"] = [-5.0, 0.0, 2.49, 2.5, 999.0, 1000.5, float("nan"), 10.0, 10.0, 10.0, 10.0, 10.0]
    trips["trip_distance"] = [1.0] * 7 + [0.0, 500.0, 500.5, 3.0, 4.0]
    trips.to_parquet(tmp_path / "t.parquet")
    kept = read_training_trips(str(tmp_path / "t.parquet"))

    assert learnable(kept, "fare_amount").index.tolist() == [3, 4, 8, 10, 11]
    assert learnable(kept, "duration").index.tolist() == kept.index.tolist()


def test_train_command_registers_a_duration_and_a_cost_model_and_prints_each_against_the_mean(
    trip_files, tracking, capsys
):
    import mlflow

    assert main(["train", "--train", trip_files[0], "--val", trip_files[1]]) == 0
    out = capsys.readouterr().out

    assert "DURATION_MODEL_URI=models:/ride-duration/1" in out
    assert "COST_MODEL_URI=models:/ride-cost/1" in out
    assert "MODEL_URIS=models:/ride-duration/1,models:/ride-cost/1" in out
    client = mlflow.MlflowClient(tracking)
    for name, target in (("ride-duration", DURATION), ("ride-cost", COST)):
        section = out.split(f"{name}: run ")[1]
        run = client.get_run(section.split()[0])
        assert run.data.params["target"] == target.name
        assert run.data.metrics["rmse"] == pytest.approx(float(section.split("val_rmse:")[1].split()[0]), abs=1e-6)
        assert run.data.metrics["mean_rmse"] > run.data.metrics["rmse"]
        assert load_model(f"models:/{name}/1", tracking_uri=tracking).target == target


def test_one_target_can_be_trained_alone(trip_files, tracking, capsys):
    assert main(["train", "--train", trip_files[0], "--val", trip_files[1], "--target", "cost"]) == 0
    out = capsys.readouterr().out
    assert "COST_MODEL_URI=models:/ride-cost/1" in out
    assert "ride-duration" not in out


def test_random_forest_option_trains_a_servable_model(trip_files, tracking, capsys):
    args = ["--train", trip_files[0], "--val", trip_files[1], "--target", "duration", "--model", "random-forest"]
    assert main(["train", *args]) == 0
    assert "DURATION_MODEL_URI=models:/ride-duration/1" in capsys.readouterr().out


def test_missing_input_file_is_a_clear_error(tmp_path, tracking, capsys):
    assert main(["train", "--train", str(tmp_path / "nope.parquet"), "--val", str(tmp_path / "nope.parquet")]) == 2
    assert "nope.parquet" in capsys.readouterr().err


@pytest.fixture(scope="module")
def course_months_training(tmp_path_factory):
    """The course's recipe on the real January and February files, for both targets, logged once for the tests below."""
    train = shared_path("data/green_tripdata_2021-01.parquet")
    val = shared_path("data/green_tripdata_2021-02.parquet")
    root = tmp_path_factory.mktemp("course-months")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        duration, cost = train_model(
            str(train), str(val), tracking_uri=f"sqlite:///{root / 'mlflow.db'}", register=False
        )
        yield duration, cost, val


@pytest.mark.shared_data
def test_course_months_reproduce_the_course_validation_rmse(course_months_training):
    duration, _, _ = course_months_training
    assert f"{duration.rmse:.6f}" == "7.758715"


@pytest.mark.shared_data
def test_on_the_course_months_the_cost_model_is_far_below_predicting_the_mean_fare(course_months_training):
    _, cost, _ = course_months_training
    assert (f"{cost.rmse:.6f}", f"{cost.mean_rmse:.6f}") == ("5.479582", "12.733277")  # the README's figures
    assert cost.rmse < 0.5 * cost.mean_rmse


@pytest.mark.shared_data
@pytest.mark.parametrize("index", [0, 1], ids=["duration", "cost"])
def test_on_the_real_february_the_served_model_predicts_what_scikit_learn_predicts(course_months_training, index):
    result, val = course_months_training[index], course_months_training[2]
    description, difference = served_against_sklearn(result.model_uri, str(val), result.recipe.target.actual)
    assert description == "weight table (numpy)"
    assert difference <= 1e-9


def served_against_sklearn(model_uri: str, val_path: str, actual: str = "duration") -> tuple[str, float]:
    """What serves the model as the functions load it, and its largest difference from the scikit-learn
    pipeline logged beside it, on the trips of ``val_path`` it learns from."""
    import mlflow
    import skops.io

    from model_service.model.load import TRUSTED_TYPES

    model_dir = mlflow.artifacts.download_artifacts(model_uri)
    pipeline = skops.io.load(f"{model_dir}/model.skops", trusted=TRUSTED_TYPES)
    served = load_model(model_dir)
    trips = learnable(read_training_trips(val_path), actual)
    expected = pipeline.predict(features_for_frame(trips))
    return served.description, float(np.max(np.abs(served.predictor.predict(*feature_columns(trips)) - expected)))


@pytest.mark.parametrize("target", [DURATION, COST], ids=["duration", "cost"])
def test_a_trained_linear_model_is_served_from_a_weight_table_equal_to_its_pipeline(trip_files, tracking, target):
    (result,) = train_model(*trip_files, targets=(target.name,), tracking_uri=tracking, register=False)
    description, difference = served_against_sklearn(result.model_uri, trip_files[1], target.actual)
    assert description == "weight table (numpy)"
    assert difference <= 1e-9


def test_a_trained_random_forest_has_no_weight_table_and_is_served_by_scikit_learn(trip_files, tracking):
    (result,) = train_model(
        *trip_files, targets=("duration",), model_type="random-forest", tracking_uri=tracking, register=False
    )
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
