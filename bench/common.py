"""What the benchmarks share: the model they serve and a free loopback port."""

from __future__ import annotations

import pickle
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COURSE_MODEL = ROOT.parent / "shared" / "models" / "lin_reg.bin"


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


def generated_pipeline():
    """DictVectorizer + LinearRegression fitted on 50,000 generated TLC-shaped trips, as training fits it."""
    from model_service.features import features_for_frame
    from model_service.sample_data import make_trips
    from model_service.training import build_pipeline
    from model_service.trips import add_duration

    trips = add_duration(make_trips(50_000, seed=0))
    return build_pipeline("linear").fit(features_for_frame(trips), trips["duration"].to_numpy())


def save_mlflow_model(pipeline, path: Path) -> Path:
    """The pipeline as the MLflow model directory the functions load (skops, as training logs it)."""
    import mlflow.sklearn

    mlflow.sklearn.save_model(pipeline, str(path), pip_requirements=["scikit-learn"])
    return path
