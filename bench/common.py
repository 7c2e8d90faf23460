"""What the benchmarks share: the models they serve and the machine they run on."""

from __future__ import annotations

import contextlib
import os
import pickle
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
COURSE_MODEL = SHARED / "models" / "lin_reg.bin"


# A child's ru_maxrss counts the pages it inherits at fork, and a benchmark
# holds models and data, so each measured command is started from a fresh,
# small interpreter that waits for it and reports its peak RSS.
MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
job = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(job.pid, 0)
print(os.waitstatus_to_exitcode(status), time.perf_counter() - start, usage.ru_maxrss, flush=True)
"""


@dataclass(frozen=True)
class Measured:
    output: list[str]
    """The command's standard output, line by line."""
    seconds: float
    """Wall time, interpreter start-up included."""
    peak_rss_mib: float


def measured(argv: list[str], env: dict[str, str]) -> Measured:
    """Run ``argv`` from the project root and measure it; exit with its error output if it fails."""
    run = subprocess.run([sys.executable, "-c", MEASURE, *argv], cwd=ROOT, env=env, capture_output=True, text=True)
    *output, last = run.stdout.splitlines() or ["1 0 0"]
    code, seconds, max_rss_kib = last.split()
    if int(code) != 0 or run.returncode != 0:
        raise SystemExit(f"{argv} exited with {code}:\n{run.stderr}")
    return Measured(output, float(seconds), int(max_rss_kib) / 1024)


def machine() -> str:
    """The machine the figures come from: CPUs, their model, the load, numpy's BLAS kernel and its overrides."""
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown CPU",
    )
    blas = ", ".join(
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')}".strip()
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )
    overrides = " ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({cpu}), load average {load}; numpy BLAS: {blas or 'none'} {overrides}".strip()


def trained_model(workdir: Path) -> tuple[Path, str]:
    """The project's own trained model, logged by ``training.train`` and downloaded as its MLflow directory.

    Trained on the course's months when ../shared has them, else on generated trips.
    """
    import mlflow

    from model_service.model.training import train
    from model_service.sample_data import training_months

    months = training_months(SHARED / "data", workdir / "data")
    train_path, val_path = map(str, months)
    if months[0].is_relative_to(SHARED):
        description = "trained by the project on the course's January, validated on February"
    else:
        description = "trained by the project on generated trips (../shared is absent)"
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the report, not a progress bar
    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    with contextlib.chdir(workdir):  # MLflow writes its artifacts under the working directory
        (result,) = train(train_path, val_path, targets=("duration",), tracking_uri=tracking, register=False)
        model_dir = mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(workdir / "model"))
    return Path(model_dir), description


def bench_model(workdir: Path) -> tuple[Path, str]:
    """The course's lin_reg.bin when ../shared has it, else the same kind of model trained on generated trips.

    Either way a pickled (DictVectorizer, LinearRegression) tuple, the file the
    course's baselines load, so both sides of each benchmark serve one model.
    """
    if COURSE_MODEL.exists():
        return COURSE_MODEL, f"course model {COURSE_MODEL}"
    path = workdir / "lin_reg.bin"
    path.write_bytes(pickle.dumps(tuple(step for _, step in generated_pipeline().steps)))
    return path, "linear model trained on 50,000 generated trips (../shared is absent)"


def generated_pipeline(column: str = "duration"):
    """DictVectorizer + LinearRegression fitted on 50,000 generated trips' ``column``, as training fits it."""
    from model_service.model.features import features_for_frame
    from model_service.model.training import build_pipeline
    from model_service.sample_data import make_trips
    from model_service.trips import add_duration

    trips = add_duration(make_trips(50_000, seed=0))
    return build_pipeline("linear").fit(features_for_frame(trips), trips[column].to_numpy())


def save_mlflow_model(pipeline, path: Path, target: Any = None) -> Path:
    """The pipeline as the MLflow model directory the functions load, as training logs it (a duration model)."""
    from model_service.model.target import DURATION
    from model_service.model.training import save_model

    save_model(pipeline, path, target=target or DURATION)
    return path


def cost_model(workdir: Path) -> Path:
    """The second model the project serves, beside the duration model: a cost model trained on generated trips."""
    from model_service.model.target import COST

    return save_mlflow_model(generated_pipeline("fare_amount"), workdir / "cost-model", COST)


def load_course_model(model_bin: Path) -> tuple[Any, Any]:
    """A course model.bin's (DictVectorizer, regressor), as its own code unpickles it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the course's lin_reg.bin was pickled with scikit-learn 1.0.2
        vectorizer, regressor = pickle.loads(model_bin.read_bytes())
    return vectorizer, regressor


def as_mlflow_model(model_bin: Path, path: Path) -> Path:
    """A course model.bin's (DictVectorizer, regressor) as the MLflow model training would log: the same weights."""
    from sklearn.pipeline import make_pipeline

    return save_mlflow_model(make_pipeline(*load_course_model(model_bin)), path)


ROW_GROUP_ROWS = 250_000
"""Rows per row group of a generated month, as the TLC writes its files."""


def write_month(path: Path, rows: int, start: str = "2021-01-01", taxi_type: str = "green") -> None:
    """``rows`` generated trips written a row group at a time, so the month is never whole in this process's memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from model_service.sample_data import make_trips

    schema = pa.Schema.from_pandas(make_trips(1, taxi_type=taxi_type), preserve_index=False)
    with pq.ParquetWriter(path, schema) as writer:
        for seed, first in enumerate(range(0, rows, ROW_GROUP_ROWS)):
            chunk = make_trips(min(ROW_GROUP_ROWS, rows - first), seed=seed, start=start, taxi_type=taxi_type)
            writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
