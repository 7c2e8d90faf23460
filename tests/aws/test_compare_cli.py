"""``python -m model_service compare``: the table, the picture, and an exit status a pipeline can gate on."""

from __future__ import annotations

import json

import pytest

from model_service.cli import main
from model_service.model.training import train
from model_service.sample_data import make_trips
from tests.conftest import PREDICTIONS, shared_path

SHADOW = "ride_shadow_predictions"


@pytest.fixture
def month(tmp_path):
    path = tmp_path / "green_tripdata_2021-03.parquet"
    make_trips(3000, seed=4, start="2021-03-01").to_parquet(path)
    return str(path)


def test_on_a_month_both_rmses_their_difference_and_a_picture_are_given(challenged_registry, month, tmp_path, capsys):
    picture = tmp_path / "cmp.png"
    assert main(["compare", "--model", "ride-duration", "--trips", month, "--plot", str(picture)]) == 0

    out = capsys.readouterr().out
    assert "champion   (version 1): RMSE " in out
    assert "challenger (version 2): RMSE " in out
    assert "challenger - champion: +" in out, "the challenger fitted on 60 trips is worse"
    assert f"picture: {picture}" in out
    assert picture.read_bytes()[:4] == b"\x89PNG"


def test_a_challenger_worse_than_allowed_exits_1_saying_not_to_promote(challenged_registry, month, capsys):
    code = main(["compare", "--model", "ride-duration", "--trips", month, "--fail-if-worse-by", "0.1"])
    assert code == 1
    assert "do not promote" in capsys.readouterr().out


def test_a_challenger_within_the_allowance_exits_0(challenged_registry, month, capsys):
    assert main(["compare", "--model", "ride-duration", "--trips", month, "--fail-if-worse-by", "1000"]) == 0
    assert "within the 1000 minutes allowed" in capsys.readouterr().out


def test_gating_without_a_month_exits_2_saying_what_to_give(capsys):
    assert main(["compare", "--model", "ride-duration", "--from-start", "--fail-if-worse-by", "0.5"]) == 2
    assert "needs --trips" in capsys.readouterr().err


def event(seq: int, value: float, consumer: str) -> bytes:
    return json.dumps(
        {
            "model": "ride_duration_prediction_model",
            "version": "2" if consumer.endswith("shadow") else "1",
            "prediction": {"ride_duration": value, "ride_id": seq},
            "event_id": f"ride_events:shardId-000000000000:{seq}/{consumer}",
        }
    ).encode()


def test_on_the_streams_the_shadows_events_are_joined_to_the_champions(kinesis, tmp_path, capsys):
    kinesis.create_stream(StreamName=SHADOW, ShardCount=1)
    for stream, records in (
        (PREDICTIONS, [event(1, 10.0, "duration"), event(2, 20.0, "duration"), event(3, 5.0, "duration")]),
        (SHADOW, [event(1, 12.0, "duration-shadow"), event(2, 19.0, "duration-shadow")]),
    ):
        kinesis.put_records(StreamName=stream, Records=[{"Data": r, "PartitionKey": "k"} for r in records])

    assert main(["compare", "--model", "ride-duration", "--from-start", "--plot", str(tmp_path / "p.png")]) == 0

    out = capsys.readouterr().out
    assert "rides answered by both:     2" in out
    assert "by the champion only:       1" in out
    assert "versions:                   champion 1, challenger 2" in out
    assert "mean +0.500 minutes" in out


def test_a_missing_shadow_stream_exits_2_naming_it(kinesis, capsys):
    assert main(["compare", "--model", "ride-duration", "--minutes", "60"]) == 2
    assert f"error: cannot read Kinesis stream {SHADOW}: ResourceNotFoundException" in capsys.readouterr().err


@pytest.mark.shared_data
def test_on_the_real_february_a_forest_challenger_beats_the_linear_champion(tmp_path, monkeypatch, capsys):
    january, february = (shared_path(f"data/green_tripdata_2021-0{m}.parquet") for m in (1, 2))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for model_type in ("linear", "random-forest"):
        train(str(january), str(february), targets=("duration",), model_type=model_type, tracking_uri=uri)

    code = main(["compare", "--model", "ride-duration", "--trips", str(february), "--fail-if-worse-by", "0"])

    out = capsys.readouterr().out
    assert code == 0
    assert "the 61,921 trips training validates duration on" in out
    assert "champion   (version 1): RMSE 7.758715 minutes" in out, "the course's figure, as training printed it"
    assert (tmp_path / "compare-ride-duration.png").stat().st_size > 20_000
