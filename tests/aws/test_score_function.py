"""The scoring Lambda: the schedule's event in, one month scored from S3 to S3 (moto), or a clear failure."""

from __future__ import annotations

import boto3
import pandas as pd
import pytest

from model_service.batch.function import scoring_function
from model_service.batch.monthly import Month
from model_service.batch.schedule import scoring_request
from model_service.config import Settings
from model_service.errors import InputNotFound, SchemaViolation
from model_service.sample_data import make_trips
from stream_tools.local_invoke import LocalContext

BUCKET = "ride-duration-data"
INPUT_TEMPLATE = f"s3://{BUCKET}/trips/{{taxi_type}}_tripdata_{{year:04d}}-{{month:02d}}.parquet"
OUTPUT_TEMPLATE = f"s3://{BUCKET}/predictions/{{taxi_type}}/{{year:04d}}-{{month:02d}}.parquet"


def scheduled(time: str, taxi_type: str = "green") -> dict:
    """The event the template's schedule sends, with Scheduler's placeholder filled in."""
    return {"taxi_type": taxi_type, "scheduled_time": time, "time_zone": "America/New_York"}


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def handler(mlflow_model_dir, cost_model_dir, s3):
    """The scoring function as a new container builds it, from the environment's settings."""
    environ = {
        "MODEL_URIS": f"{mlflow_model_dir},{cost_model_dir}",
        "BATCH_INPUT_TEMPLATE": INPUT_TEMPLATE,
        "BATCH_OUTPUT_TEMPLATE": OUTPUT_TEMPLATE,
        "MODEL_VERSIONS": "v-scoring,v-cost",
    }
    return scoring_function(Settings.from_env(environ))


def put_trips(s3, tmp_path, month: str, rows: int) -> pd.DataFrame:
    trips = make_trips(rows, seed=rows, start=f"{month}-01")
    trips.to_parquet(tmp_path / "trips.parquet")
    s3.upload_file(str(tmp_path / "trips.parquet"), BUCKET, f"trips/green_tripdata_{month}.parquet")
    return trips


def read_output(s3, tmp_path, key: str) -> pd.DataFrame:
    s3.download_file(BUCKET, key, str(tmp_path / "out.parquet"))
    return pd.read_parquet(tmp_path / "out.parquet")


def test_the_scheduled_run_on_march_2nd_scores_february_from_s3_to_s3(handler, s3, tmp_path):
    trips = put_trips(s3, tmp_path, "2021-02", 150)

    answer = handler(scheduled("2021-03-02T08:00:00Z"), LocalContext())

    output = read_output(s3, tmp_path, "predictions/green/2021-02.parquet")
    assert answer["month"] == "2021-02"
    assert answer["output"] == f"s3://{BUCKET}/predictions/green/2021-02.parquet"
    assert (answer["status"], answer["rows"]) == ("scored", 150)
    assert answer["model_versions"] == {"duration": "v-scoring", "cost": "v-cost"}
    expected = handler.models.predict_columns(
        trips.PULocationID.to_numpy(), trips.DOLocationID.to_numpy(), trips.trip_distance.to_numpy()
    )
    assert output["predicted_duration"].tolist() == pytest.approx(expected["duration"].tolist())
    assert output["predicted_cost"].tolist() == pytest.approx(expected["cost"].tolist())
    assert output["actual_cost"].tolist() == trips.fare_amount.tolist()
    assert output["ride_id"].iloc[0] == "2021/02_0"


def test_a_month_named_in_the_event_is_scored_instead_of_the_one_before_the_schedule(handler, s3, tmp_path):
    put_trips(s3, tmp_path, "2021-01", 40)

    answer = handler({"taxi_type": "green", "month": "2021-01"}, LocalContext())

    assert (answer["month"], answer["rows"]) == ("2021-01", 40)


def test_running_a_month_again_replaces_its_output(handler, s3, tmp_path):
    put_trips(s3, tmp_path, "2021-02", 40)
    handler(scheduled("2021-03-02T08:00:00Z"), LocalContext())
    put_trips(s3, tmp_path, "2021-02", 60)

    handler(scheduled("2021-03-02T08:00:00Z"), LocalContext())

    assert len(read_output(s3, tmp_path, "predictions/green/2021-02.parquet")) == 60


def test_a_month_asked_to_skip_an_existing_output_leaves_it(handler, s3, tmp_path):
    put_trips(s3, tmp_path, "2021-02", 40)
    s3.put_object(Bucket=BUCKET, Key="predictions/green/2021-02.parquet", Body=b"scored before")

    answer = handler({"taxi_type": "green", "month": "2021-02", "skip_existing": True}, LocalContext())

    assert (answer["status"], answer["rows"]) == ("skipped", None)
    assert s3.get_object(Bucket=BUCKET, Key="predictions/green/2021-02.parquet")["Body"].read() == b"scored before"


def test_a_missing_input_month_fails_naming_the_object_and_writes_no_output(handler, s3):
    with pytest.raises(InputNotFound, match=rf"s3://{BUCKET}/trips/green_tripdata_2021-03\.parquet: no such object"):
        handler(scheduled("2021-04-02T07:00:00Z"), LocalContext())

    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="predictions/")


def test_a_malformed_event_fails_naming_the_field(handler):
    with pytest.raises(SchemaViolation, match="monht"):
        handler({"taxi_type": "green", "monht": "2021-02"}, LocalContext())


def test_the_schedules_event_asks_for_the_month_before_the_scheduled_time():
    request = scoring_request(scheduled("2021-01-02T08:00:00Z", taxi_type="yellow"))

    assert (request.taxi_type, request.month, request.skip_existing) == ("yellow", Month(2020, 12), False)


def test_an_explicit_month_wins_over_the_scheduled_time():
    request = scoring_request({**scheduled("2021-03-02T08:00:00Z"), "month": "2020-06"})

    assert request.month == Month(2020, 6)


@pytest.mark.parametrize(
    ("event", "field", "reason"),
    [
        ({"taxi_type": "green"}, "month", "give month (YYYY-MM) or scheduled_time"),
        ({"taxi_type": "green", "month": "2021-13"}, "month", "month must be 1 to 12, not 13"),
        ({"taxi_type": "green", "month": "Feb 2021"}, "month", "String should match pattern"),
        ({"taxi_type": "green", "scheduled_time": "soon"}, "scheduled_time", "not an ISO 8601 time"),
        (
            {"taxi_type": "green", "scheduled_time": "2021-03-02T11:00:00Z", "time_zone": "Mars/Olympus"},
            "time_zone",
            "'Mars/Olympus' is not an IANA time zone",
        ),
        ({"taxi_type": "../models", "month": "2021-02"}, "taxi_type", "String should match pattern"),
        ({"month": "2021-02"}, "taxi_type", "Field required"),
        ({"taxi_type": "green", "month": "2021-02", "skip_existing": "yes"}, "skip_existing", "valid boolean"),
        ({"taxi_type": "green", "month": "2021-02", "monht": "x"}, "monht", "Extra inputs are not permitted"),
        ([], "<record>", "valid dictionary"),
    ],
)
def test_an_event_that_does_not_name_one_month_clearly_is_refused_naming_the_field(event, field, reason):
    with pytest.raises(SchemaViolation) as refused:
        scoring_request(event)

    assert refused.value.errors[0]["field"] == field
    assert reason in refused.value.errors[0]["reason"]


def test_a_new_container_removes_the_s3_copies_a_killed_run_left_in_tmp(mlflow_model_dir, s3, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    (tmp_path / "batch-input-abc").mkdir()
    (tmp_path / "batch-input-abc" / "yellow_tripdata_2023-01.parquet").write_bytes(b"x" * 1000)
    (tmp_path / "batch-output-def").mkdir()
    (tmp_path / "someone-elses").mkdir()

    scoring_function(Settings.from_env({"MODEL_URIS": str(mlflow_model_dir)}))

    assert [p.name for p in tmp_path.iterdir()] == ["someone-elses"]
