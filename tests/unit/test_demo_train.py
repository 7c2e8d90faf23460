"""``make train`` (``python -m scripts.demo train``): the demo serves the registry's champions.

Training runs only for a model without a champion; a model trained with
``python -m model_service train`` is served as any other.
"""

from __future__ import annotations

import io
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from model_service.cli import main as model_service
from model_service.sample_data import make_trips
from scripts import demo


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A fresh working directory with its own MLflow store (as the demo's --workdir), and two small months."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    months = (
        tmp_path / "data" / "green_tripdata_2021-01.parquet",
        tmp_path / "data" / "green_tripdata_2021-02.parquet",
    )
    months[0].parent.mkdir()
    make_trips(3000, seed=1).to_parquet(months[0])
    make_trips(1000, seed=2, start="2021-02-01").to_parquet(months[1])
    monkeypatch.setattr(demo, "trip_months", lambda: months)
    return tmp_path


def train_directly(workdir: Path, *targets: str) -> None:
    """``python -m model_service train`` on the working directory's months, as a user would run it."""
    chosen = [argument for target in targets for argument in ("--target", target)]
    data = workdir / "data"
    argv = ["train", "--train", str(data / "green_tripdata_2021-01.parquet")]
    with redirect_stdout(io.StringIO()):
        assert model_service([*argv, "--val", str(data / "green_tripdata_2021-02.parquet"), *chosen]) == 0


def training_in_process(monkeypatch) -> list[list[str]]:
    """The demo's training command run in this process instead of a subprocess (faster); its argv recorded."""
    calls: list[list[str]] = []

    def run(argv, **kwargs):
        calls.append(argv)
        out = io.StringIO()
        with redirect_stdout(out):
            status = model_service(argv[3:])  # [python, -m, model_service, train, ...]
        return subprocess.CompletedProcess(argv, status, out.getvalue(), "")

    monkeypatch.setattr(demo.subprocess, "run", run)
    return calls


def no_training(monkeypatch) -> None:
    def run(argv, **kwargs):
        raise AssertionError(f"trained although the models had champions: {argv}")

    monkeypatch.setattr(demo.subprocess, "run", run)


def test_a_fresh_store_trains_both_models_printing_each_uri_once_then_what_the_demo_will_serve(workdir, capsys):
    served = demo.ensure_models()

    lines = capsys.readouterr().out.splitlines()
    assert served == ["models:/ride-duration/1", "models:/ride-cost/1"]
    assert lines[0] == (
        "[train] training ride-duration, ride-cost on green_tripdata_2021-01.parquet,"
        " validating on green_tripdata_2021-02.parquet ..."
    )
    assert [line for line in lines if "MODEL_URI" in line] == [
        "DURATION_MODEL_URI=models:/ride-duration/1",
        "COST_MODEL_URI=models:/ride-cost/1",
    ], "each model's URI once, no MODEL_URIS line repeating them"
    assert lines[-1] == (
        "[train] the demo will serve models:/ride-duration/1,models:/ride-cost/1 (the registry's champions)"
    )


def test_models_trained_earlier_are_kept_saying_which_file_to_delete_to_train_again(workdir, monkeypatch, capsys):
    train_directly(workdir)
    no_training(monkeypatch)

    assert demo.ensure_models() == ["models:/ride-duration/1", "models:/ride-cost/1"]
    assert capsys.readouterr().out == (
        "[train] models trained earlier are kept: models:/ride-duration/1,models:/ride-cost/1"
        f" (delete {workdir / 'mlflow.db'} to train again)\n"
    )


def test_a_model_trained_with_the_direct_command_is_the_one_the_demo_serves(workdir, monkeypatch):
    train_directly(workdir)
    train_directly(workdir, "cost")  # a second cost version: its challenger, while version 1 stays the champion
    no_training(monkeypatch)

    assert demo.ensure_models() == ["models:/ride-duration/1", "models:/ride-cost/1"]


def test_a_promoted_version_is_the_one_the_demo_serves_next(workdir, monkeypatch):
    from model_service.model.aliases import apply, plan_promotion

    train_directly(workdir)
    train_directly(workdir, "duration")
    apply(plan_promotion("ride-duration", demo.tracking_uri()), demo.tracking_uri())
    no_training(monkeypatch)

    assert demo.ensure_models() == ["models:/ride-duration/2", "models:/ride-cost/1"]


def test_only_the_models_without_a_champion_are_trained(workdir, monkeypatch, capsys):
    train_directly(workdir, "duration")
    calls = training_in_process(monkeypatch)

    served = demo.ensure_models()

    assert [argv[3:] for argv in calls] == [
        [
            "train",
            "--train",
            str(workdir / "data" / "green_tripdata_2021-01.parquet"),
            "--val",
            str(workdir / "data" / "green_tripdata_2021-02.parquet"),
            "--target",
            "cost",
        ]
    ]
    assert served == ["models:/ride-duration/1", "models:/ride-cost/1"]
    assert capsys.readouterr().out.splitlines()[-1] == (
        "[train] the demo will serve models:/ride-duration/1,models:/ride-cost/1 (the registry's champions)"
    )


def test_the_file_to_delete_is_named_only_for_a_store_kept_in_a_file():
    assert demo.store_file("sqlite:///mlflow.db") == "mlflow.db"
    assert demo.store_file("sqlite:////srv/tracking/mlflow.db") == "/srv/tracking/mlflow.db"
    assert demo.store_file("http://mlflow.internal:5000") is None
