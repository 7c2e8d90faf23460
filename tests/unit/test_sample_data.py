"""The demo's training months: always in the data folder, where batch scoring's default template looks."""

from __future__ import annotations

import pandas as pd

from model_service.batch.monthly import Month, month_paths
from model_service.config import Settings
from model_service.sample_data import COURSE_MONTHS, make_trips, training_months


def shared_months(root) -> None:
    root.mkdir()
    for name, seed in zip(COURSE_MONTHS, (7, 8), strict=True):
        make_trips(30, seed=seed).to_parquet(root / name)


def test_the_shared_months_are_copied_into_the_data_folder(tmp_path):
    shared_months(tmp_path / "shared")

    paths = training_months(tmp_path / "shared", tmp_path / "data")

    assert paths == (tmp_path / "data" / COURSE_MONTHS[0], tmp_path / "data" / COURSE_MONTHS[1])
    for path in paths:
        assert path.read_bytes() == (tmp_path / "shared" / path.name).read_bytes()


def test_without_the_shared_months_tlc_shaped_ones_are_generated_in_the_data_folder(tmp_path, capsys):
    paths = training_months(tmp_path / "absent", tmp_path / "data", rows=20)

    assert [len(pd.read_parquet(path)) for path in paths] == [20, 20]
    assert [path.parent for path in paths] == [tmp_path / "data"] * 2
    assert "generating TLC-shaped trips" in capsys.readouterr().out


def test_months_already_in_the_data_folder_are_kept_as_they_are(tmp_path):
    shared_months(tmp_path / "shared")
    (tmp_path / "data").mkdir()
    make_trips(5).to_parquet(tmp_path / "data" / COURSE_MONTHS[1])

    training_months(tmp_path / "shared", tmp_path / "data")

    assert len(pd.read_parquet(tmp_path / "data" / COURSE_MONTHS[1])) == 5
    assert len(pd.read_parquet(tmp_path / "data" / COURSE_MONTHS[0])) == 30


def test_the_validation_month_is_where_the_default_input_template_looks_for_february(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, february = training_months(tmp_path / "absent", tmp_path / "data", rows=5)
    expected, _ = month_paths(Settings().batch_input_template, "", taxi_type="green", month=Month(2021, 2))
    assert february.relative_to(tmp_path).as_posix() == expected
