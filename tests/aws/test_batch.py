"""Batch scoring on small TLC-shaped parquet files: what the output holds, row by row."""

from __future__ import annotations

import io
import math
from datetime import datetime
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_service.batch.score import score_file
from model_service.cli import main
from model_service.errors import BadInputFile, SchemaViolation, UnsafeOutput
from model_service.sample_data import make_trips
from model_service.schema import validate_ride
from model_service.service import PredictionService, RideModels
from tests.conftest import shared_path
from tests.factories import answering_nan_beyond

COURSE_COLUMNS = [
    "ride_id",
    "lpep_pickup_datetime",
    "PULocationID",
    "DOLocationID",
    "actual_duration",
    "predicted_duration",
    "diff",
    "model_version",
]


@pytest.fixture(scope="module")
def service(mlflow_model_dir) -> PredictionService:
    return PredictionService.load(str(mlflow_model_dir), "v-batch")


def write_trips(path: Path, trips: pd.DataFrame, row_group_size: int = 100, schema: pa.Schema | None = None) -> str:
    table = pa.Table.from_pandas(trips, schema=schema, preserve_index=False)
    pq.write_table(table, path, row_group_size=row_group_size)
    return str(path)


def score(service, tmp_path, trips: pd.DataFrame, **kwargs) -> tuple[pd.DataFrame, object]:
    source = write_trips(tmp_path / "trips.parquet", trips)
    report = score_file(RideModels([service]), source, str(tmp_path / "out.parquet"), **kwargs)
    return pd.read_parquet(tmp_path / "out.parquet"), report


def one_by_one(service: PredictionService, trips: pd.DataFrame) -> list[float]:
    return [
        service.predict([validate_ride({"PULocationID": pu, "DOLocationID": do, "trip_distance": d})])[0]
        for pu, do, d in zip(
            trips.PULocationID.tolist(), trips.DOLocationID.tolist(), trips.trip_distance.tolist(), strict=True
        )
    ]


def test_each_row_is_predicted_as_the_service_predicts_that_ride_alone(service, tmp_path):
    trips = make_trips(450, seed=5)

    output, _ = score(service, tmp_path, trips, chunk_rows=128)

    assert output["predicted_duration"].tolist() == pytest.approx(one_by_one(service, trips))


def test_rows_the_model_answers_nan_for_are_written_as_null_and_not_counted_as_predicted(service, tmp_path):
    trips = make_trips(50, seed=5)
    trips.loc[[3, 40], "trip_distance"] = 300.0

    output, report = score(answering_nan_beyond(service, miles=100), tmp_path, trips)

    assert output.index[output["predicted_duration"].isna()].tolist() == [3, 40]
    assert (report.rows, report.predicted) == (50, 48)


def test_the_output_has_the_course_columns_in_order(service, tmp_path):
    output, _ = score(service, tmp_path, make_trips(10))

    assert list(output.columns) == COURSE_COLUMNS


@pytest.fixture(scope="module")
def cost(cost_model_dir) -> PredictionService:
    return PredictionService.load(str(cost_model_dir), "v-cost")


def score_both(service, cost, tmp_path, trips: pd.DataFrame) -> pd.DataFrame:
    source = write_trips(tmp_path / "trips.parquet", trips)
    score_file(RideModels([service, cost]), source, str(tmp_path / "out.parquet"))
    return pd.read_parquet(tmp_path / "out.parquet")


def test_with_both_models_the_cost_columns_follow_the_courses_and_the_fare_is_the_actual(service, cost, tmp_path):
    trips = make_trips(50)
    output = score_both(service, cost, tmp_path, trips)

    assert list(output.columns) == [
        *COURSE_COLUMNS,
        "actual_cost",
        "predicted_cost",
        "cost_diff",
        "cost_model_version",
    ]
    assert output["predicted_cost"].tolist() == pytest.approx(one_by_one(cost, trips))
    assert output["actual_cost"].tolist() == trips.fare_amount.tolist()
    assert (output["cost_diff"] == output["actual_cost"] - output["predicted_cost"]).all()
    assert (set(output["model_version"]), set(output["cost_model_version"])) == ({"v-batch"}, {"v-cost"})


def test_a_file_without_fares_gets_the_predicted_cost_but_no_actual_one(service, cost, tmp_path):
    output = score_both(service, cost, tmp_path, make_trips(20).drop(columns=["fare_amount"]))

    assert [c for c in output.columns if "cost" in c] == ["predicted_cost", "cost_model_version"]
    assert output["predicted_cost"].notna().all()


def test_a_fare_column_that_is_not_numbers_is_refused_naming_it(service, cost, tmp_path):
    trips = make_trips(20).astype({"fare_amount": str})
    source = write_trips(tmp_path / "trips.parquet", trips)

    with pytest.raises(BadInputFile, match=r"column fare_amount: must be a number, not (large_)?string"):
        score_file(RideModels([service, cost]), source, str(tmp_path / "out.parquet"))


def test_every_output_row_carries_the_model_version(service, tmp_path):
    output, _ = score(service, tmp_path, make_trips(10))

    assert set(output["model_version"]) == {"v-batch"}


def test_ride_ids_are_the_month_and_the_input_row_number_across_chunks(service, tmp_path):
    output, _ = score(service, tmp_path, make_trips(250), ride_id_prefix="2021/02_", chunk_rows=100)

    assert output["ride_id"].tolist() == [f"2021/02_{i}" for i in range(250)]


def test_actual_duration_is_dropoff_minus_pickup_in_minutes_and_diff_is_actual_minus_predicted(service, tmp_path):
    trips = make_trips(20)

    output, _ = score(service, tmp_path, trips)

    minutes = (trips.lpep_dropoff_datetime - trips.lpep_pickup_datetime).dt.total_seconds() / 60
    assert output["actual_duration"].tolist() == pytest.approx(minutes.tolist())
    assert output["diff"].tolist() == pytest.approx((output.actual_duration - output.predicted_duration).tolist())


def test_the_pickup_time_and_zone_ids_are_copied_from_the_input(service, tmp_path):
    trips = make_trips(20)

    output, _ = score(service, tmp_path, trips)

    assert output["lpep_pickup_datetime"].tolist() == trips["lpep_pickup_datetime"].tolist()
    assert output["PULocationID"].tolist() == trips["PULocationID"].tolist()
    assert output["DOLocationID"].tolist() == trips["DOLocationID"].tolist()


def test_each_chunk_is_one_predict_call_of_at_most_chunk_rows_rows(service, tmp_path, monkeypatch):
    sizes = []
    original = service.predict_columns
    monkeypatch.setattr(
        service, "predict_columns", lambda pu, do, dist: sizes.append(len(pu)) or original(pu, do, dist)
    )

    score(service, tmp_path, make_trips(1000), chunk_rows=300)

    assert sizes == [300, 300, 300, 100]


def test_int32_zone_ids_are_scored_like_int64_ones(service, tmp_path):
    trips = make_trips(200, seed=2)
    schema = pa.Schema.from_pandas(trips, preserve_index=False)
    for name in ("PULocationID", "DOLocationID"):
        schema = schema.set(schema.get_field_index(name), pa.field(name, pa.int32()))
    source = write_trips(tmp_path / "int32.parquet", trips, schema=schema)
    assert pq.read_schema(source).field("PULocationID").type == pa.int32()

    score_file(RideModels([service]), source, str(tmp_path / "out.parquet"))

    output = pd.read_parquet(tmp_path / "out.parquet")
    assert output["predicted_duration"].tolist() == pytest.approx(one_by_one(service, trips))
    assert output["PULocationID"].dtype == "int64"


def test_rows_with_null_float_ids_keep_their_row_with_a_null_prediction_and_are_counted(service, tmp_path):
    trips = make_trips(300, seed=4)
    trips["PULocationID"] = trips["PULocationID"].astype("float64")
    trips["DOLocationID"] = trips["DOLocationID"].astype("float64")
    trips.loc[[3, 150, 299], "PULocationID"] = np.nan
    trips.loc[[7], "DOLocationID"] = np.nan

    output, report = score(service, tmp_path, trips, chunk_rows=100)

    missing = output["predicted_duration"].isna()
    assert len(output) == 300
    assert output.index[missing].tolist() == [3, 7, 150, 299]
    assert output.loc[missing, "diff"].isna().all()
    assert (report.rows, report.predicted, report.unpredicted) == (300, 296, 4)
    scored = trips.drop(index=[3, 7, 150, 299]).astype({"PULocationID": "int64", "DOLocationID": "int64"})
    assert output.loc[~missing, "predicted_duration"].tolist() == pytest.approx(one_by_one(service, scored))


EDGE_ZONES = [1.0, 265.0, 0.0, 266.0, -5.0, 130.5, math.nan]
EDGE_DISTANCES = [0.0, 500.0, -0.01, 500.01, math.nan, math.inf, -math.inf]


def schema_accepts(pu: float, distance: float) -> bool:
    zone = int(pu) if math.isfinite(pu) and pu.is_integer() else pu
    try:
        validate_ride({"PULocationID": zone, "DOLocationID": 205, "trip_distance": distance})
    except SchemaViolation:
        return False
    return True


def test_a_row_is_predicted_exactly_when_the_ride_schema_accepts_its_ride(service, tmp_path):
    pairs = [(pu, d) for pu in EDGE_ZONES for d in EDGE_DISTANCES]
    trips = make_trips(len(pairs))
    trips["PULocationID"] = [pu for pu, _ in pairs]
    trips["DOLocationID"] = 205
    trips["trip_distance"] = [d for _, d in pairs]

    output, _ = score(service, tmp_path, trips)

    assert output["predicted_duration"].notna().tolist() == [schema_accepts(pu, d) for pu, d in pairs]


def test_a_yellow_file_keeps_its_tpep_pickup_column(service, tmp_path):
    trips = make_trips(10, taxi_type="yellow")

    output, _ = score(service, tmp_path, trips)

    assert output.columns[1] == "tpep_pickup_datetime"
    assert output["actual_duration"].notna().all()


def test_a_file_without_timestamps_gets_predictions_without_actual_duration_or_diff(service, tmp_path):
    trips = make_trips(10).drop(columns=["lpep_pickup_datetime", "lpep_dropoff_datetime"])

    output, _ = score(service, tmp_path, trips)

    assert list(output.columns) == ["ride_id", "PULocationID", "DOLocationID", "predicted_duration", "model_version"]


def test_a_file_without_a_feature_column_is_rejected_naming_it(service, tmp_path):
    source = write_trips(tmp_path / "trips.parquet", make_trips(10).drop(columns=["trip_distance"]))

    with pytest.raises(ValueError, match="no trip_distance column"):
        score_file(RideModels([service]), source, str(tmp_path / "out.parquet"))


def test_a_missing_input_file_is_file_not_found(service, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet: no such file"):
        score_file(RideModels([service]), str(tmp_path / "nope.parquet"), str(tmp_path / "out.parquet"))


def fail_on_second_chunk(service, monkeypatch) -> None:
    calls = []

    def predict(pu, do, distance):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("model broke")
        return np.zeros(len(pu))

    monkeypatch.setattr(service, "predict_columns", predict)


def test_a_failed_run_leaves_no_output_file_behind(service, tmp_path, monkeypatch):
    source = write_trips(tmp_path / "trips.parquet", make_trips(500))
    fail_on_second_chunk(service, monkeypatch)

    with pytest.raises(RuntimeError):
        score_file(RideModels([service]), source, str(tmp_path / "out" / "x.parquet"), chunk_rows=100)

    assert list((tmp_path / "out").iterdir()) == []


def test_progress_lines_report_rows_done_of_the_total(service, tmp_path):
    source = write_trips(tmp_path / "trips.parquet", make_trips(250))
    progress = io.StringIO()

    score_file(RideModels([service]), source, str(tmp_path / "out.parquet"), chunk_rows=100, progress=progress)

    lines = progress.getvalue().splitlines()
    assert [line.split(" rows")[0] for line in lines] == ["scored 100/250", "scored 200/250", "scored 250/250"]
    assert all(line.endswith("rows/s") for line in lines)


def test_an_s3_input_is_scored_into_an_s3_output(service, tmp_path, aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="trips")
    trips = make_trips(300, seed=9)
    s3.upload_file(write_trips(tmp_path / "in.parquet", trips), "trips", "green/2021-02.parquet")

    report = score_file(
        RideModels([service]), "s3://trips/green/2021-02.parquet", "s3://trips/out/2021-02.parquet", chunk_rows=100
    )

    s3.download_file("trips", "out/2021-02.parquet", str(tmp_path / "out.parquet"))
    output = pd.read_parquet(tmp_path / "out.parquet")
    assert report.rows == 300
    assert output["predicted_duration"].tolist() == pytest.approx(one_by_one(service, trips))


def test_a_missing_s3_input_is_file_not_found(service, aws):
    boto3.client("s3").create_bucket(Bucket="trips")

    with pytest.raises(FileNotFoundError, match=r"s3://trips/none\.parquet: no such object"):
        score_file(RideModels([service]), "s3://trips/none.parquet", "s3://trips/out.parquet")


def test_the_score_command_fills_the_default_templates_for_a_month(mlflow_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    write_trips(tmp_path / "data" / "green_tripdata_2021-02.parquet", make_trips(120))

    code = main(["score", "--year", "2021", "--month", "2", "--model-uri", str(mlflow_model_dir), "--chunk-rows", "50"])

    assert code == 0
    output = pd.read_parquet(tmp_path / "output" / "green" / "2021-02.parquet")
    assert output["ride_id"].iloc[-1] == "2021/02_119"
    out, err = capsys.readouterr()
    assert "rows:           120" in out
    assert "rows/s:" in out
    assert "scored 120/120 rows (100%)" in err


def test_the_score_command_without_paths_or_a_month_exits_2_saying_what_to_give(mlflow_model_dir, capsys):
    assert main(["score", "--model-uri", str(mlflow_model_dir)]) == 2
    assert "give --input and --output, or --year and --month" in capsys.readouterr().err


def test_the_score_command_with_a_model_that_cannot_load_exits_2(tmp_path, capsys):
    source = write_trips(tmp_path / "trips.parquet", make_trips(5))

    code = main(["score", "--input", source, "--output", str(tmp_path / "o.parquet"), "--model-uri", "/nope.bin"])

    assert code == 2
    assert "MODEL_URI='/nope.bin'" in capsys.readouterr().err


@pytest.mark.shared_data
def test_the_real_february_file_scores_every_row_with_the_course_model(tmp_path):
    source = shared_path("data/green_tripdata_2021-02.parquet")
    service = PredictionService.load(str(shared_path("models/lin_reg.bin")), allow_pickle=True)

    report = score_file(RideModels([service]), str(source), str(tmp_path / "out.parquet"))

    trips = pd.read_parquet(source, columns=["PULocationID", "DOLocationID", "trip_distance"])
    absurd = ~trips["trip_distance"].between(0, 500)
    output = pd.read_parquet(tmp_path / "out.parquet")
    assert report.rows == len(output) == len(trips) == 64_572
    assert output["predicted_duration"].isna().tolist() == absurd.tolist()
    sample = trips[~absurd].sample(50, random_state=0)
    assert output.loc[sample.index, "predicted_duration"].tolist() == pytest.approx(one_by_one(service, sample))


# Bad input files: exit 2, one line naming the file, the column at fault and what is wrong, no output.


def score_command(mlflow_model_dir, source, output, capsys) -> tuple[int, list[str]]:
    code = main(["score", "--input", str(source), "--output", str(output), "--model-uri", str(mlflow_model_dir)])
    return code, capsys.readouterr().err.strip().splitlines()


def with_column(trips: pd.DataFrame, name: str, values) -> pd.DataFrame:
    trips = trips.copy()
    trips[name] = values
    return trips


def corrupt_column_chunk(path: Path, column: str, row_group: int) -> None:
    """Flip bytes in the middle of one column chunk's compressed pages, as a bad disk or transfer would."""
    metadata = pq.ParquetFile(path).metadata
    chunk = metadata.row_group(row_group).column(metadata.schema.names.index(column))
    middle = (chunk.dictionary_page_offset or chunk.data_page_offset) + chunk.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))


def test_an_empty_file_exits_2_naming_it(mlflow_model_dir, tmp_path, capsys):
    source = tmp_path / "empty.parquet"
    source.touch()

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert (code, err) == (2, [f"error: {source}: is empty (0 bytes)"])
    assert not (tmp_path / "out.parquet").exists()


def test_a_truncated_file_exits_2_naming_it(mlflow_model_dir, tmp_path, capsys):
    source = Path(write_trips(tmp_path / "trips.parquet", make_trips(500)))
    source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert code == 2
    assert err == [f"error: {source}: is not a readable parquet file ({err[0].split(' (', 1)[1]}"]
    assert "magic bytes not found" in err[0]
    assert not (tmp_path / "out.parquet").exists()


def test_a_file_with_parquets_magic_and_no_footer_exits_2_with_one_line_naming_it(mlflow_model_dir, tmp_path, capsys):
    source = tmp_path / "trips.parquet"
    source.write_bytes(b"PAR1" + bytes(100) + b"PAR1")

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert code == 2
    (line,) = err
    assert line.startswith(f"error: {source}: is not a readable parquet file (")


@pytest.mark.parametrize(("pickup", "dropoff"), [(2021, 2500), (1, 9999)], ids=["year 2500", "years 1 to 9999"])
def test_timestamps_far_outside_the_data_are_scored_with_their_duration_not_an_error(
    service, tmp_path, pickup, dropoff
):
    trips = make_trips(20, seed=3)
    table = pa.Table.from_pandas(trips, preserve_index=False)
    for column, year in (("lpep_pickup_datetime", pickup), ("lpep_dropoff_datetime", dropoff)):
        stamps = pa.array([datetime(year, 1, 1)] * len(trips), pa.timestamp("us"))
        table = table.set_column(table.schema.get_field_index(column), column, stamps)
    pq.write_table(table, tmp_path / "trips.parquet")

    report = score_file(RideModels([service]), str(tmp_path / "trips.parquet"), str(tmp_path / "out.parquet"))

    output = pd.read_parquet(tmp_path / "out.parquet")
    assert report.predicted == 20
    assert (
        output["actual_duration"].tolist()
        == [(datetime(dropoff, 1, 1) - datetime(pickup, 1, 1)).total_seconds() / 60] * 20
    )


def test_a_corrupt_data_page_exits_2_naming_the_file_column_and_row_group(mlflow_model_dir, tmp_path, capsys):
    source = Path(write_trips(tmp_path / "trips.parquet", make_trips(600), row_group_size=200))
    corrupt_column_chunk(source, "trip_distance", row_group=1)

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(f"error: {source}: column trip_distance: data in row group 1 cannot be read (")
    assert not list(tmp_path.glob("*out*")), "no output and no partial file"


@pytest.mark.parametrize(
    ("kind", "convert"),
    [
        ("large_string", lambda ts: ts.dt.strftime("%Y-%m-%dT%H:%M:%S")),
        ("int64", lambda ts: ts.astype("int64") // 10**6),
    ],
    ids=["ISO text", "epoch seconds"],
)
def test_timestamps_that_are_not_parquet_timestamps_exit_2_naming_the_column(
    mlflow_model_dir, tmp_path, capsys, kind, convert
):
    trips = make_trips(50)
    trips = with_column(trips, "lpep_pickup_datetime", convert(trips["lpep_pickup_datetime"]))
    source = write_trips(tmp_path / "trips.parquet", trips)

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert (code, err) == (
        2,
        [
            f"error: {source}: column lpep_pickup_datetime: must be a parquet timestamp, "
            f"not {kind} (text and epoch numbers are not read)"
        ],
    )


def test_boolean_zone_ids_exit_2_instead_of_being_scored_as_zones_0_and_1(mlflow_model_dir, tmp_path, capsys):
    trips = make_trips(200)
    source = write_trips(tmp_path / "trips.parquet", with_column(trips, "PULocationID", trips.PULocationID % 2 == 0))

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert (code, err) == (
        2,
        [f"error: {source}: column PULocationID: zone ids must be integers from 1 to 265, not bool"],
    )
    assert not (tmp_path / "out.parquet").exists()


def test_zone_ids_given_as_text_exit_2_as_the_ride_schema_rejects_them(mlflow_model_dir, tmp_path, capsys):
    trips = make_trips(20)
    source = write_trips(tmp_path / "trips.parquet", with_column(trips, "DOLocationID", trips.DOLocationID.astype(str)))

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert code == 2
    assert err == [f"error: {source}: column DOLocationID: zone ids must be integers from 1 to 265, not large_string"]


def test_a_distance_given_as_text_exits_2_naming_the_column(mlflow_model_dir, tmp_path, capsys):
    trips = make_trips(20)
    source = write_trips(
        tmp_path / "trips.parquet", with_column(trips, "trip_distance", trips.trip_distance.astype(str))
    )

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert (code, err) == (
        2,
        [f"error: {source}: column trip_distance: must be a number of miles, not large_string"],
    )


def test_a_missing_column_exits_2_naming_it(mlflow_model_dir, tmp_path, capsys):
    source = write_trips(tmp_path / "trips.parquet", make_trips(10).drop(columns=["PULocationID"]))

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert (code, err) == (2, [f"error: {source}: no PULocationID column, so nothing to score"])


def test_pickup_and_dropoff_in_different_time_zones_exit_2_naming_the_dropoff_column(
    mlflow_model_dir, tmp_path, capsys
):
    trips = make_trips(10)
    trips["lpep_pickup_datetime"] = trips["lpep_pickup_datetime"].dt.tz_localize("America/New_York")
    source = write_trips(tmp_path / "trips.parquet", trips)

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out.parquet", capsys)

    assert code == 2
    assert err == [
        f"error: {source}: column lpep_dropoff_datetime: time zone None differs from "
        "lpep_pickup_datetime's (America/New_York)"
    ]


def test_timestamps_with_a_time_zone_are_scored_like_naive_ones(service, tmp_path):
    trips = make_trips(30)
    for column in ("lpep_pickup_datetime", "lpep_dropoff_datetime"):
        trips[column] = trips[column].dt.tz_localize("UTC")

    output, _ = score(service, tmp_path, trips)

    minutes = (trips.lpep_dropoff_datetime - trips.lpep_pickup_datetime).dt.total_seconds() / 60
    assert output["actual_duration"].tolist() == pytest.approx(minutes.tolist())
    assert output["predicted_duration"].tolist() == pytest.approx(one_by_one(service, trips))


def test_a_corrupt_file_in_s3_is_named_by_its_s3_path(service, tmp_path, aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="trips")
    source = Path(write_trips(tmp_path / "in.parquet", make_trips(600), row_group_size=200))
    corrupt_column_chunk(source, "PULocationID", row_group=2)
    s3.upload_file(str(source), "trips", "green/2021-02.parquet")

    with pytest.raises(BadInputFile) as refused:
        score_file(RideModels([service]), "s3://trips/green/2021-02.parquet", "s3://trips/out/2021-02.parquet")

    assert str(refused.value).startswith("s3://trips/green/2021-02.parquet: column PULocationID: data in row group 2")
    assert "Contents" not in s3.list_objects_v2(Bucket="trips", Prefix="out/")


# The output: never the input, never half-written.


def test_an_output_equal_to_the_input_is_refused_and_the_input_kept(mlflow_model_dir, tmp_path, capsys):
    source = Path(write_trips(tmp_path / "trips.parquet", make_trips(100)))
    before = source.read_bytes()

    code, err = score_command(mlflow_model_dir, source, tmp_path / "sub" / ".." / "trips.parquet", capsys)

    assert code == 2
    assert err == [
        f"error: {tmp_path}/sub/../trips.parquet: the output is the input file; write the predictions elsewhere"
    ]
    assert source.read_bytes() == before


def test_an_output_that_is_a_hard_link_to_the_input_is_refused(service, tmp_path):
    source = Path(write_trips(tmp_path / "trips.parquet", make_trips(10)))
    (tmp_path / "link.parquet").hardlink_to(source)

    with pytest.raises(UnsafeOutput, match="the output is the input file"):
        score_file(RideModels([service]), str(source), str(tmp_path / "link.parquet"))


def test_an_s3_output_that_names_a_prefix_is_refused(service, aws):
    with pytest.raises(UnsafeOutput, match=r"s3://trips/out/: the output is a directory; give a file name"):
        score_file(RideModels([service]), "s3://trips/green/2021-02.parquet", "s3://trips/out/")


def test_an_s3_output_equal_to_the_s3_input_is_refused(service, aws):
    with pytest.raises(UnsafeOutput, match="the output is the input file"):
        score_file(RideModels([service]), "s3://trips/green/2021-02.parquet", "s3://trips/green/2021-02.parquet")


def test_an_output_that_is_a_directory_is_refused_before_scoring(mlflow_model_dir, tmp_path, capsys):
    source = write_trips(tmp_path / "trips.parquet", make_trips(10))
    (tmp_path / "out").mkdir()

    code, err = score_command(mlflow_model_dir, source, tmp_path / "out", capsys)

    assert (code, err) == (2, [f"error: {tmp_path}/out: the output is a directory; give a file name"])


def test_a_failed_run_leaves_the_previous_output_whole(service, tmp_path, monkeypatch):
    source = write_trips(tmp_path / "trips.parquet", make_trips(500))
    target = tmp_path / "out" / "2021-02.parquet"
    score_file(RideModels([service]), source, str(target))
    before = target.read_bytes()
    fail_on_second_chunk(service, monkeypatch)

    with pytest.raises(RuntimeError, match="model broke"):
        score_file(RideModels([service]), source, str(target), chunk_rows=100)

    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["2021-02.parquet"], "no partial file left beside it"


def test_a_failed_run_leaves_the_previous_s3_output_whole(service, tmp_path, monkeypatch, aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="trips")
    s3.upload_file(write_trips(tmp_path / "in.parquet", make_trips(500)), "trips", "in.parquet")
    s3.put_object(Bucket="trips", Key="out.parquet", Body=b"last month's predictions")
    fail_on_second_chunk(service, monkeypatch)

    with pytest.raises(RuntimeError, match="model broke"):
        score_file(RideModels([service]), "s3://trips/in.parquet", "s3://trips/out.parquet", chunk_rows=100)

    assert s3.get_object(Bucket="trips", Key="out.parquet")["Body"].read() == b"last month's predictions"


def test_a_rerun_replaces_the_output_with_the_new_predictions(service, tmp_path):
    target = tmp_path / "out.parquet"
    target.write_bytes(b"an older model's predictions")
    source = write_trips(tmp_path / "trips.parquet", make_trips(40))

    score_file(RideModels([service]), source, str(target))

    assert pd.read_parquet(target)["predicted_duration"].tolist() == pytest.approx(one_by_one(service, make_trips(40)))
