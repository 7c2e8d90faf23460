"""``backfill``: every month of a range scored once, here or on the scoring function, with a closing table."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pandas as pd
import pytest

from model_service.batch.backfill import backfill_on_lambda
from model_service.batch.monthly import Month, month_range
from model_service.cli import main
from model_service.sample_data import make_trips

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def put_month(root: Path, month: str, rows: int, taxi_type: str = "green") -> None:
    """A generated month where the default BATCH_INPUT_TEMPLATE looks for it."""
    (root / "data").mkdir(exist_ok=True)
    make_trips(rows, seed=rows, start=f"{month}-01").to_parquet(root / "data" / f"{taxi_type}_tripdata_{month}.parquet")


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The closing table's lines by their first cell (a month, or total)."""
    return {line.split()[0]: line.split() for line in stdout.strip().splitlines()[1:]}


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh checkout's working directory: the default templates read data/ and write output/."""
    monkeypatch.chdir(tmp_path)
    for name in ("BATCH_INPUT_TEMPLATE", "BATCH_OUTPUT_TEMPLATE", "MODEL_URIS", "MODEL_VERSIONS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def backfill(mlflow_model_dir, *args: str) -> int:
    return main(["backfill", "--model-uri", str(mlflow_model_dir), "--model-version", "v-backfill", *args])


def test_three_generated_months_are_scored_from_a_fresh_checkout_with_a_progress_bar_and_a_table(
    mlflow_model_dir, workdir
):
    for month, rows in (("2021-01", 120), ("2021-02", 90), ("2021-03", 60)):
        put_month(workdir, month, rows)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_service",
            "backfill",
            "--taxi-type",
            "green",
            "--from",
            "2021-01",
            "--to",
            "2021-03",
        ],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "MODEL_URIS": str(mlflow_model_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert [rows[m][:4] for m in ("2021-01", "2021-02", "2021-03")] == [
        ["2021-01", "scored", "120", "0"],
        ["2021-02", "scored", "90", "0"],
        ["2021-03", "scored", "60", "0"],
    ]
    assert rows["total"][:5] == ["total", "3", "months", "270", "0"]
    assert "3/3" in result.stderr, "the progress bar reached the last month"
    for month, count in (("2021-01", 120), ("2021-02", 90), ("2021-03", 60)):
        output = pd.read_parquet(workdir / "output" / "green" / f"{month}.parquet")
        assert len(output) == count
        assert output["ride_id"].iloc[0] == f"{month.replace('-', '/')}_0"


def test_months_whose_output_exists_are_skipped(mlflow_model_dir, workdir, capsys):
    for month in ("2021-01", "2021-02"):
        put_month(workdir, month, 30)
    assert backfill(mlflow_model_dir, "--from", "2021-01", "--to", "2021-01") == 0
    scored_before = (workdir / "output" / "green" / "2021-01.parquet").stat().st_mtime_ns
    capsys.readouterr()

    assert backfill(mlflow_model_dir, "--from", "2021-01", "--to", "2021-02") == 0

    rows = table_rows(capsys.readouterr().out)
    assert (rows["2021-01"][1], rows["2021-02"][1]) == ("skipped", "scored")
    assert (workdir / "output" / "green" / "2021-01.parquet").stat().st_mtime_ns == scored_before


def test_force_scores_months_whose_output_exists(mlflow_model_dir, workdir, capsys):
    put_month(workdir, "2021-01", 30)
    backfill(mlflow_model_dir, "--from", "2021-01", "--to", "2021-01")
    put_month(workdir, "2021-01", 50)
    capsys.readouterr()

    assert backfill(mlflow_model_dir, "--from", "2021-01", "--to", "2021-01", "--force") == 0

    assert table_rows(capsys.readouterr().out)["2021-01"][1:3] == ["scored", "50"]
    assert len(pd.read_parquet(workdir / "output" / "green" / "2021-01.parquet")) == 50


def test_a_missing_month_is_listed_as_failed_with_its_reason_while_the_others_are_scored(
    mlflow_model_dir, workdir, capsys
):
    put_month(workdir, "2021-01", 30)
    put_month(workdir, "2021-03", 30)

    code = backfill(mlflow_model_dir, "--from", "2021-01", "--to", "2021-03")

    out = capsys.readouterr().out
    rows = table_rows(out)
    assert code == 1
    assert [rows[m][1] for m in ("2021-01", "2021-02", "2021-03")] == ["scored", "failed", "scored"]
    assert (
        "no trips for green 2021-02 at data/green_tripdata_2021-02.parquet"
        " (set BATCH_INPUT_TEMPLATE to where your monthly files are)" in out
    )
    assert "2 scored, 0 skipped, 1 failed" in out
    assert not (workdir / "output" / "green" / "2021-02.parquet").exists()


def test_a_month_with_a_bad_file_is_listed_with_the_column_at_fault(mlflow_model_dir, workdir, capsys):
    put_month(workdir, "2021-01", 30)
    trips = make_trips(10)
    trips["PULocationID"] = trips["PULocationID"].astype(str)
    trips.to_parquet(workdir / "data" / "green_tripdata_2021-02.parquet")

    assert backfill(mlflow_model_dir, "--from", "2021-01", "--to", "2021-02") == 1

    assert "column PULocationID: zone ids must be integers" in capsys.readouterr().out


def test_worker_processes_score_the_same_outputs_as_one_process(mlflow_model_dir, workdir, capsys):
    for month in ("2021-01", "2021-02", "2021-03"):
        put_month(workdir, month, 80)
    assert (
        backfill(
            mlflow_model_dir, "--from", "2021-01", "--to", "2021-03", "--output-template", "one/{month:02d}.parquet"
        )
        == 0
    )

    code = backfill(
        mlflow_model_dir,
        "--from",
        "2021-01",
        "--to",
        "2021-03",
        "--parallel",
        "2",
        "--output-template",
        "two/{month:02d}.parquet",
    )

    rows = table_rows(capsys.readouterr().out)
    assert code == 0
    assert [rows[f"2021-0{m}"][1] for m in (1, 2, 3)] == ["scored"] * 3
    for month in ("01", "02", "03"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(workdir / "one" / f"{month}.parquet"), pd.read_parquet(workdir / "two" / f"{month}.parquet")
        )


def test_workers_that_cannot_load_the_model_fail_every_month_saying_why(workdir, capsys):
    put_month(workdir, "2021-01", 10)

    code = main(["backfill", "--from", "2021-01", "--to", "2021-02", "--parallel", "2", "--model-uri", "/nope.bin"])

    out = capsys.readouterr().out
    assert code == 1
    assert out.count("MODEL_URI='/nope.bin'") == 2


def test_a_model_that_cannot_load_exits_2(workdir, capsys):
    code = main(["backfill", "--from", "2021-01", "--to", "2021-01", "--model-uri", "/nope.bin"])

    assert code == 2
    assert "MODEL_URI='/nope.bin'" in capsys.readouterr().err


def test_a_range_that_ends_before_it_starts_exits_2(mlflow_model_dir, workdir, capsys):
    assert backfill(mlflow_model_dir, "--from", "2021-03", "--to", "2021-01") == 2
    assert "the range ends (2021-01) before it starts (2021-03)" in capsys.readouterr().err


def test_a_month_that_is_not_yyyy_mm_exits_2(mlflow_model_dir, workdir, capsys):
    with pytest.raises(SystemExit) as exited:
        backfill(mlflow_model_dir, "--from", "2021-1", "--to", "2021-03")

    assert exited.value.code == 2
    assert "'2021-1' is not a month; write it as YYYY-MM" in capsys.readouterr().err


def test_months_in_s3_are_read_and_written_through_the_templates(mlflow_model_dir, tmp_path, capsys, aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="data")
    for month in ("2021-01", "2021-02"):
        make_trips(25, start=f"{month}-01").to_parquet(tmp_path / "in.parquet")
        s3.upload_file(str(tmp_path / "in.parquet"), "data", f"trips/green_tripdata_{month}.parquet")

    code = backfill(
        mlflow_model_dir,
        "--from",
        "2021-01",
        "--to",
        "2021-02",
        "--input-template",
        "s3://data/trips/{taxi_type}_tripdata_{year:04d}-{month:02d}.parquet",
        "--output-template",
        "s3://data/predictions/{taxi_type}/{year:04d}-{month:02d}.parquet",
    )

    assert code == 0
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix="predictions/")["Contents"]]
    assert keys == ["predictions/green/2021-01.parquet", "predictions/green/2021-02.parquet"]


class RecordingLambda:
    """Answers ``invoke`` as the scoring function would, and records how many invocations overlapped."""

    def __init__(self, fail_months: dict[str, str] | None = None) -> None:
        self.events: list[dict] = []
        self.running = self.most_running = 0
        self.fail_months = fail_months or {}
        self.lock = threading.Lock()

    def invoke(self, FunctionName: str, Payload: bytes) -> dict:
        event = json.loads(Payload)
        with self.lock:
            self.events.append({"function": FunctionName, **event})
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        if event["month"] in self.fail_months:
            body = {"errorMessage": self.fail_months[event["month"]], "errorType": "InputNotFound"}
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        answer = {"status": "scored", "rows": 100, "unpredicted": 1}
        return {"Payload": io.BytesIO(json.dumps(answer).encode())}


def test_with_a_function_each_month_is_one_invocation_and_at_most_parallel_run_at_once():
    client = RecordingLambda()
    months = month_range(Month(2019, 1), Month(2019, 12))

    outcomes = backfill_on_lambda(months, "yellow", "scoring-fn", parallel=3, client=client)

    assert sorted(e["month"] for e in client.events) == [str(m) for m in months]
    assert {(e["function"], e["taxi_type"], e["skip_existing"]) for e in client.events} == {
        ("scoring-fn", "yellow", True)
    }
    assert client.most_running == 3
    assert [o.month for o in outcomes] == months
    assert {(o.status, o.rows, o.unpredicted) for o in outcomes} == {("scored", 100, 1)}


def test_with_a_function_force_asks_it_to_replace_existing_outputs():
    client = RecordingLambda()

    backfill_on_lambda([Month(2019, 1)], "green", "scoring-fn", force=True, client=client)

    assert client.events[0]["skip_existing"] is False


def test_with_a_function_a_failed_invocation_is_listed_with_the_functions_error():
    client = RecordingLambda(fail_months={"2019-02": "s3://data/trips/green_tripdata_2019-02.parquet: no such object"})

    outcomes = backfill_on_lambda(month_range(Month(2019, 1), Month(2019, 3)), "green", "scoring-fn", client=client)

    assert [o.status for o in outcomes] == ["scored", "failed", "scored"]
    assert outcomes[1].error == "s3://data/trips/green_tripdata_2019-02.parquet: no such object"


def test_a_bad_taxi_type_is_listed_with_its_reason_not_an_exception_class(mlflow_model_dir, workdir, capsys):
    assert backfill(mlflow_model_dir, "--taxi-type", "Green!", "--from", "2021-01", "--to", "2021-01") == 1

    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("2021-01")]
    assert "taxi type 'Green!' must be lower-case letters, digits or _" in line
    assert "Error" not in line


def test_score_of_a_month_not_there_says_where_it_looked_and_which_setting_to_set(mlflow_model_dir, workdir, capsys):
    argv = ["score", "--model-uri", str(mlflow_model_dir), "--taxi-type", "green", "--year", "2021", "--month", "3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "error: no trips for green 2021-03 at data/green_tripdata_2021-03.parquet"
        " (set BATCH_INPUT_TEMPLATE to where your monthly files are)"
    )
    assert "Traceback" not in err


def test_score_of_a_file_given_by_path_that_is_not_there_names_only_the_file(mlflow_model_dir, workdir, capsys):
    argv = ["score", "--model-uri", str(mlflow_model_dir), "--input", "nope.parquet", "--output", "out.parquet"]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "error: nope.parquet: no such file"


def test_score_reads_a_month_the_demo_put_in_data_with_the_default_template(mlflow_model_dir, workdir, capsys):
    from model_service.sample_data import training_months

    training_months(workdir / "no-shared-data", workdir / "data", rows=50)
    argv = ["score", "--model-uri", str(mlflow_model_dir), "--taxi-type", "green", "--year", "2021", "--month", "2"]
    assert main(argv) == 0
    assert "input:          data/green_tripdata_2021-02.parquet" in capsys.readouterr().out
    assert len(pd.read_parquet(workdir / "output" / "green" / "2021-02.parquet")) == 50
