"""A month of a taxi type: naming it, the month a schedule scores, its paths, scoring it."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from model_service.batch.monthly import (
    INPUT_TEMPLATE_HINT,
    Month,
    month_before,
    month_paths,
    month_range,
    score_month,
)
from model_service.config import Settings
from model_service.errors import InputNotFound
from model_service.sample_data import make_trips
from model_service.service import PredictionService, RideModels


@pytest.fixture(scope="module")
def service(mlflow_model_dir) -> PredictionService:
    return PredictionService.load(str(mlflow_model_dir), "v-monthly")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        batch_input_template=str(tmp_path / "in" / "{taxi_type}_tripdata_{year:04d}-{month:02d}.parquet"),
        batch_output_template=str(tmp_path / "out" / "{taxi_type}" / "{year:04d}-{month:02d}.parquet"),
        batch_chunk_rows=50,
    )


def put_month(settings: Settings, taxi_type: str, month: Month, rows: int) -> pd.DataFrame:
    trips = make_trips(rows, seed=month.month, start=f"{month}-01")
    path, _ = month_paths(settings.batch_input_template, "", taxi_type=taxi_type, month=month)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    trips.to_parquet(path)
    return trips


def test_a_month_is_written_and_read_as_yyyy_mm():
    assert str(Month.parse("2021-02")) == "2021-02"
    assert Month.parse(" 2021-02 ") == Month(2021, 2)


@pytest.mark.parametrize("text", ["2021-2", "202102", "2021/02", "21-02", "2021-13", "2021-00"])
def test_anything_but_a_real_yyyy_mm_month_is_refused(text):
    with pytest.raises(ValueError, match=r"YYYY-MM|month must be 1 to 12"):
        Month.parse(text)


def test_the_month_before_january_is_december_of_the_year_before():
    assert Month(2021, 1).previous() == Month(2020, 12)
    assert Month(2020, 12).next() == Month(2021, 1)


def test_a_range_holds_both_ends_and_crosses_years():
    assert [str(m) for m in month_range(Month(2020, 11), Month(2021, 2))] == [
        "2020-11",
        "2020-12",
        "2021-01",
        "2021-02",
    ]


def test_a_range_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match=re.escape("the range ends (2021-01) before it starts (2021-03)")):
        month_range(Month(2021, 3), Month(2021, 1))


def test_a_schedule_that_fires_on_the_2nd_scores_the_previous_month():
    assert month_before("2021-03-02T08:00:00Z", "America/New_York") == Month(2021, 2)


def test_a_schedule_that_fires_in_january_scores_december():
    assert month_before("2022-01-02T08:00:00Z", "America/New_York") == Month(2021, 12)


def test_the_month_is_taken_in_the_schedules_time_zone_not_in_utc():
    # 00:30 on 1 March in Tokyo is still 28 February in UTC.
    assert month_before("2021-02-28T15:30:00Z", "Asia/Tokyo") == Month(2021, 2)
    assert month_before("2021-02-28T15:30:00Z", "UTC") == Month(2021, 1)


@pytest.mark.parametrize(
    ("time", "zone", "message"),
    [
        ("2021-03-02T08:00:00Z", "Mars/Olympus", "not an IANA time zone"),
        ("yesterday", "UTC", "not an ISO 8601 time"),
        ("2021-03-02T08:00:00", "UTC", "has no UTC offset"),
    ],
)
def test_a_scheduled_time_or_zone_that_cannot_be_read_is_refused(time, zone, message):
    with pytest.raises(ValueError, match=message):
        month_before(time, zone)


def test_month_paths_fill_the_taxi_type_year_and_month():
    assert month_paths(
        "s3://in/{taxi_type}_tripdata_{year:04d}-{month:02d}.parquet",
        "out/{taxi_type}/{year:04d}-{month:02d}.parquet",
        taxi_type="yellow",
        month=Month(2021, 3),
    ) == ("s3://in/yellow_tripdata_2021-03.parquet", "out/yellow/2021-03.parquet")


def test_month_paths_refuse_an_unknown_placeholder():
    with pytest.raises(ValueError, match=re.escape("may use only {taxi_type}, {year} and {month}")):
        month_paths("{day}", "{day}", taxi_type="green", month=Month(2021, 1))


@pytest.mark.parametrize("taxi_type", ["../models", "Green", "green/x", "", "a" * 33])
def test_a_taxi_type_that_could_leave_its_directory_is_refused(taxi_type):
    with pytest.raises(ValueError, match="must be lower-case letters, digits or _"):
        month_paths("{taxi_type}", "{taxi_type}", taxi_type=taxi_type, month=Month(2021, 1))


def test_score_month_writes_the_months_output_with_its_ride_ids(service, settings):
    put_month(settings, "green", Month(2021, 2), 120)

    result = score_month(RideModels([service]), "green", Month(2021, 2), settings)

    output = pd.read_parquet(result.output)
    assert result.output.endswith("out/green/2021-02.parquet")
    assert (result.status, result.report.rows) == ("scored", 120)
    assert output["ride_id"].tolist() == [f"2021/02_{i}" for i in range(120)]


def test_score_month_skips_a_month_whose_output_exists_when_asked(service, settings):
    put_month(settings, "green", Month(2021, 2), 30)
    first = score_month(RideModels([service]), "green", Month(2021, 2), settings)
    before = Path(first.output).stat().st_mtime_ns

    again = score_month(RideModels([service]), "green", Month(2021, 2), settings, skip_existing=True)

    assert (again.status, again.report) == ("skipped", None)
    assert Path(again.output).stat().st_mtime_ns == before


def test_score_month_replaces_an_existing_output_by_default(service, settings):
    put_month(settings, "green", Month(2021, 2), 30)
    first = score_month(RideModels([service]), "green", Month(2021, 2), settings)
    put_month(settings, "green", Month(2021, 2), 45)

    again = score_month(RideModels([service]), "green", Month(2021, 2), settings)

    assert again.status == "scored"
    assert len(pd.read_parquet(first.output)) == 45


def test_a_month_without_input_fails_naming_the_missing_file_and_writes_nothing(service, settings, tmp_path):
    with pytest.raises(InputNotFound, match=r"in/green_tripdata_2021-03\.parquet: no such file"):
        score_month(RideModels([service]), "green", Month(2021, 3), settings)

    assert not (tmp_path / "out").exists()


def test_a_month_without_input_given_a_hint_names_the_month_the_path_and_the_hint(service, settings, tmp_path):
    path = tmp_path / "in" / "green_tripdata_2021-03.parquet"
    with pytest.raises(InputNotFound) as raised:
        score_month(RideModels([service]), "green", Month(2021, 3), settings, missing_hint=INPUT_TEMPLATE_HINT)

    assert str(raised.value) == (
        f"no trips for green 2021-03 at {path} (set BATCH_INPUT_TEMPLATE to where your monthly files are)"
    )
    assert not (tmp_path / "out").exists()


def test_the_result_says_what_was_scored_where(service, settings):
    put_month(settings, "green", Month(2021, 2), 10)

    answer = score_month(RideModels([service]), "green", Month(2021, 2), settings).as_dict({"duration": "v-monthly"})

    assert {k: answer[k] for k in ("taxi_type", "month", "status", "rows", "model_versions")} == {
        "taxi_type": "green",
        "month": "2021-02",
        "status": "scored",
        "rows": 10,
        "model_versions": {"duration": "v-monthly"},
    }
    assert answer["predicted"] + answer["unpredicted"] == 10
