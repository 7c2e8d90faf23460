"""Benchmark the Kinesis Lambda function: its cold start, and its handler against the course's and the floor.

    .venv/bin/python -m bench.lambda_bench [--records 10000] [--runs 5] [--cold-starts 5]

Measured side by side in this run:

- cold start: seconds to ``import lambda_function`` in a fresh interpreter,
  which loads the model the way the function does: the project's own trained
  MLflow model, read from ``s3://`` (a moto S3 server on 127.0.0.1) with boto3,
  against the seconds to import scikit-learn's DictVectorizer and
  LinearRegression in a fresh interpreter (what the course's function imports
  before it loads anything). Interleaved, median of ``--cold-starts`` each.
  The course's ``lin_reg.bin`` (a pickle, so scikit-learn) is timed too;
- on one ``--records`` Kinesis event and the same model (the course's
  ``lin_reg.bin``): the handler with TEST_RUN=true plus the JSON encoding of its
  response that the Lambda runtime does; the course's handler, one record and
  one model call at a time (bench/baselines/course_lambda_model.py); and the
  floor, the least any handler must do: base64+JSON decode, one predict of
  the whole batch with the fastest predictor there is (the weight table), JSON encode.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.baselines.course_lambda_model import CourseModelService
from bench.common import bench_model, load_course_model, machine, measured, trained_model
from stream_tools.local_invoke import LocalContext, kinesis_event

COLD_START_TARGET = 0.5
"""Cold start with the project's trained model, at most this share of the bare scikit-learn import."""
COURSE_TARGET = 40
FLOOR_TARGET = 1.3


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


def floor(event: dict, service, version: str) -> str:
    """The least any correct handler must do: decode, one batched predict, encode."""
    rides = [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]
    durations = service.predict([e["ride"] for e in rides])
    events = [
        {
            "model": "ride_duration_prediction_model",
            "version": version,
            "prediction": {"ride_duration": d, "ride_id": e["ride_id"]},
        }
        for e, d in zip(rides, durations, strict=True)
    ]
    return json.dumps({"predictions": events})


TIMED_IMPORT = """
import sys, time
start = time.perf_counter()
exec(sys.argv[1])
print(time.perf_counter() - start)
"""
LAMBDA_IMPORT = "import lambda_function"
SKLEARN_IMPORT = (
    "from sklearn.feature_extraction import DictVectorizer\nfrom sklearn.linear_model import LinearRegression"
)


def timed_import(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of running ``code`` in a fresh interpreter, interpreter start-up excluded."""
    run = measured([sys.executable, "-c", TIMED_IMPORT, code], env)
    return float(run.output[-1]), run.peak_rss_mib


def cold_starts(contenders: dict[str, tuple[str, dict[str, str]]], runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds and max peak RSS of each contender, run in turn so the machine's load hits all alike."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, (code, env) in contenders.items():
            samples[name].append(timed_import(code, env))
    return {name: (statistics.median(s for s, _ in runs_), max(r for _, r in runs_)) for name, runs_ in samples.items()}


MOTO_CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench", "region_name": "us-east-1"}


def serve_from_s3(model_dir: Path):
    """A moto S3 server on loopback holding ``model_dir``; returns (server, endpoint, MODEL_URI)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from local_stack.server import free_port
    from model_service.model.deploy import upload

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, **MOTO_CREDENTIALS)
    s3.create_bucket(Bucket="ride-duration-models")
    return server, endpoint, upload(model_dir, "s3://ride-duration-models/ride-duration/bench", s3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each handler; the best is kept")
    parser.add_argument("--cold-starts", type=int, default=5, help="fresh interpreters per cold-start contender")
    args = parser.parse_args()
    n = args.records

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        course_model, description = bench_model(workdir)
        trained_dir, trained_description = trained_model(workdir)
        base_env = {
            **os.environ,
            "TEST_RUN": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **{k.upper(): v for k, v in MOTO_CREDENTIALS.items() if k != "region_name"},
            "AWS_DEFAULT_REGION": MOTO_CREDENTIALS["region_name"],
        }
        server, endpoint, s3_uri = serve_from_s3(trained_dir)
        try:
            cold = cold_starts(
                {
                    "sklearn": (SKLEARN_IMPORT, base_env),
                    "trained": (LAMBDA_IMPORT, {**base_env, "MODEL_URI": s3_uri, "AWS_ENDPOINT_URL": endpoint}),
                    "course": (
                        LAMBDA_IMPORT,
                        {**base_env, "MODEL_URI": str(course_model), "MODEL_ALLOW_PICKLE": "true"},
                    ),
                },
                args.cold_starts,
            )
        finally:
            server.stop()

        os.environ.update(
            {
                "MODEL_URI": str(course_model),
                "MODEL_ALLOW_PICKLE": "true",
                "TEST_RUN": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        import lambda_function

        vectorizer, regressor = load_course_model(course_model)
        service = lambda_function.lambda_handler.service
        version = service.version
        course = CourseModelService(vectorizer, regressor, version)
        event = ride_kinesis_event(n)

        # The handler prints its EMF metrics, as in Lambda; here they go to /dev/null, not the report.
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            ours = [
                p["prediction"]["ride_duration"]
                for p in lambda_function.lambda_handler(event, LocalContext())["predictions"]
            ]
            theirs = [p["prediction"]["ride_duration"] for p in course.lambda_handler(event)["predictions"]]
            worst = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
            assert worst <= 1e-9, f"the handler must predict what the course's per-record loop predicts ({worst})"

            handler_s = best_of(args.runs, lambda: json.dumps(lambda_function.lambda_handler(event, LocalContext())))
            course_s = best_of(max(1, args.runs // 2), lambda: json.dumps(course.lambda_handler(event)))
            floor_s = best_of(args.runs, lambda: floor(event, service, version))

    print(f"machine: {machine()}")
    print(f"handler model: {description}, served as a {service.description}")
    print(
        f"event: {n:,} Kinesis records; best of {args.runs} runs each; largest difference from the course {worst:.1e}\n"
    )
    print(f"{'contender':<40}{'records/s':>12}{'us/record':>12}")
    for name, seconds in (
        ("handler (TEST_RUN, + JSON response)", handler_s),
        ("course handler (per-record predict)", course_s),
        ("floor (decode, 1 predict, encode)", floor_s),
    ):
        print(f"{name:<40}{n / seconds:>12,.0f}{seconds / n * 1e6:>12.1f}")
    print()
    print(f"handler vs course handler: {course_s / handler_s:6.1f}x faster  (target >= {COURSE_TARGET}x)")
    print(f"handler vs floor:          {handler_s / floor_s:6.2f}x the time (target <= {FLOOR_TARGET}x)")
    print(f"\ncold start, fresh interpreter, median of {args.cold_starts} (interpreter start-up excluded):")
    rows = (
        ("import DictVectorizer + LinearRegression", "sklearn", "what the course's function imports first"),
        ("import lambda_function, trained model", "trained", f"{trained_description}; s3:// via boto3"),
        ("import lambda_function, lin_reg.bin", "course", "a pickle: loading it imports scikit-learn"),
    )
    for label, key, note in rows:
        seconds, rss = cold[key]
        print(f"  {label:<42}{seconds:6.2f} s  peak RSS {rss:4.0f} MiB  ({note})")
    ratio = cold["trained"][0] / cold["sklearn"][0]
    print(f"cold start vs the scikit-learn import: {ratio:.2f}x the time (target <= {COLD_START_TARGET}x)")


if __name__ == "__main__":
    main()
