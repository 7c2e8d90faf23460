"""Benchmark the Kinesis Lambda handler against the course's handler and against the floor.

    .venv/bin/python -m bench.lambda_bench [--records 10000] [--runs 5]

On one Kinesis event and the same model, measured side by side in this run:

- handler: ``lambda_function.lambda_handler`` with TEST_RUN=true, plus the JSON
  encoding of its response that the Lambda runtime does;
- course loop: the course's handler, one record and one model call at a time
  (bench/baselines/course_lambda_model.py);
- floor: base64+JSON decode, one batched predict, JSON encode, nothing else;
- cold start: seconds to import ``lambda_function`` (which loads the model) in a
  fresh process, and that process's peak RSS.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sklearn.pipeline import make_pipeline

from bench.baselines.course_lambda_model import CourseModelService
from bench.common import ROOT, bench_model, save_mlflow_model
from model_service.features import ride_features
from stream_tools.local_invoke import LocalContext, kinesis_event


def ride_kinesis_event(n: int, seed: int = 0) -> dict:
    """``n`` random valid rides, as Lambda would deliver them from the input stream."""
    rng = random.Random(seed)
    rides = (
        {
            "ride": {
                "PULocationID": rng.randint(1, 265),
                "DOLocationID": rng.randint(1, 265),
                "trip_distance": round(rng.uniform(0.1, 25), 2),
            },
            "ride_id": i,
        }
        for i in range(n)
    )
    return kinesis_event(json.dumps(ride).encode() for ride in rides)


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """Best wall time of ``runs`` calls: the one least disturbed by the machine's other work."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def floor(event: dict, vectorizer, regressor, version: str) -> str:
    """The least any correct handler must do: decode, one batched predict, encode."""
    rides = [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]
    features = [
        ride_features(e["ride"]["PULocationID"], e["ride"]["DOLocationID"], e["ride"]["trip_distance"]) for e in rides
    ]
    durations = regressor.predict(vectorizer.transform(features)).tolist()
    events = [
        {
            "model": "ride_duration_prediction_model",
            "version": version,
            "prediction": {"ride_duration": d, "ride_id": e["ride_id"]},
        }
        for e, d in zip(rides, durations, strict=True)
    ]
    return json.dumps({"predictions": events})


COLD_START = """
import resource, time
start = time.perf_counter()
import lambda_function
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def cold_start(env: dict[str, str], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", COLD_START], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        samples.append((float(out[-2]), float(out[-1])))
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each contender; the best is kept")
    args = parser.parse_args()
    n = args.records

    with tempfile.TemporaryDirectory() as tmp:
        model, description = bench_model(Path(tmp))
        env = {"MODEL_URI": str(model), "TEST_RUN": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
        os.environ.update(env)
        import lambda_function

        vectorizer, regressor = pickle.loads(model.read_bytes())
        version = lambda_function.service.version
        course = CourseModelService(vectorizer, regressor, version)
        event = ride_kinesis_event(n)

        ours = [
            p["prediction"]["ride_duration"]
            for p in lambda_function.lambda_handler(event, LocalContext())["predictions"]
        ]
        theirs = [p["prediction"]["ride_duration"] for p in course.lambda_handler(event)["predictions"]]
        assert ours == theirs, "the handler must predict what the course's per-record loop predicts"

        handler_s = best_of(args.runs, lambda: json.dumps(lambda_function.lambda_handler(event, LocalContext())))
        course_s = best_of(max(1, args.runs // 2), lambda: json.dumps(course.lambda_handler(event)))
        floor_s = best_of(args.runs, lambda: floor(event, vectorizer, regressor, version))
        cold_s, rss_mib = cold_start({**os.environ, **env}, runs=3)
        mlflow_dir = save_mlflow_model(make_pipeline(vectorizer, regressor), Path(tmp) / "mlflow-model")
        mlflow_cold_s, mlflow_rss_mib = cold_start({**os.environ, **env, "MODEL_URI": str(mlflow_dir)}, runs=3)

    print(f"model: {description}")
    print(f"event: {n:,} Kinesis records; best of {args.runs} runs each\n")
    print(f"{'contender':<38}{'records/s':>12}{'us/record':>12}")
    for name, seconds in (
        ("handler (TEST_RUN, + JSON response)", handler_s),
        ("course handler (per-record predict)", course_s),
        ("floor (decode, 1 predict, encode)", floor_s),
    ):
        print(f"{name:<38}{n / seconds:>12,.0f}{seconds / n * 1e6:>12.1f}")
    print()
    print(f"handler vs course handler: {course_s / handler_s:6.1f}x faster  (target >= 20x)")
    print(f"handler vs floor:          {handler_s / floor_s:6.2f}x the time (target <= 1.5x)")
    print("cold start, import lambda_function + load the model (median of 3 fresh processes):")
    print(f"  model.bin pickle:             {cold_s:5.2f} s, peak RSS {rss_mib:4.0f} MiB")
    print(f"  MLflow model directory:       {mlflow_cold_s:5.2f} s, peak RSS {mlflow_rss_mib:4.0f} MiB (mlflow, skops)")


if __name__ == "__main__":
    main()
