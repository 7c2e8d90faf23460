"""Size the scoring function: time and peak memory of one yellow-taxi month, as the Lambda runs it.

    .venv/bin/python -m bench.scoring_sizing [--rows 3000000]

Generates a TLC-shaped yellow month (``tpep_`` columns, row groups of 250,000
rows), saves the model as the MLflow directory the function loads in AWS, and
runs ``score_function.lambda_handler`` for that month in a fresh process: its
import (the cold start: libraries and model) and the month's scoring, local
file to local file. Prints wall time, the process's peak RSS and the file
sizes, which the template's ScoringMemorySize, ScoringTimeout and ephemeral
storage are sized from. S3 transfer time is not included (about 1 s per
100 MB inside a region).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.batch_bench import timed
from bench.common import COURSE_MODEL, generated_pipeline, save_mlflow_model
from model_service.sample_data import make_trips

RUN_HANDLER = """
import score_function
from stream_tools.local_invoke import LocalContext
print(score_function.lambda_handler({"taxi_type": "yellow", "month": "2023-01"}, LocalContext()))
"""


def pipeline():
    """The course's lin_reg.bin as a pipeline when ../shared has it (13,221 features), else a generated one."""
    if not COURSE_MODEL.exists():
        return generated_pipeline(), "linear model trained on 50,000 generated trips"
    from sklearn.pipeline import make_pipeline

    with COURSE_MODEL.open("rb") as f:
        vectorizer, regressor = pickle.load(f)  # the course's own trusted artifact
    return make_pipeline(vectorizer, regressor), f"course model {COURSE_MODEL.name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="scoring-sizing-") as tmp:
        workdir = Path(tmp)
        model, description = pipeline()
        model_dir = save_mlflow_model(model, workdir / "model")
        trips = make_trips(args.rows, seed=1, start="2023-01-01").rename(columns=lambda c: c.replace("lpep_", "tpep_"))
        source = workdir / "yellow_tripdata_2023-01.parquet"
        pq.write_table(pa.Table.from_pandas(trips, preserve_index=False), source, row_group_size=250_000)
        del trips
        env = {
            **os.environ,
            "MODEL_URI": str(model_dir),
            "BATCH_INPUT_TEMPLATE": str(workdir / "{taxi_type}_tripdata_{year:04d}-{month:02d}.parquet"),
            "BATCH_OUTPUT_TEMPLATE": str(workdir / "out" / "{taxi_type}-{year:04d}-{month:02d}.parquet"),
            "POWERTOOLS_METRICS_NAMESPACE": "Sizing",
        }
        run = timed("score_function (cold start + month)", [sys.executable, "-c", RUN_HANDLER], args.rows, env)
        output = workdir / "out" / "yellow-2023-01.parquet"
        print(f"model: {description}, as an MLflow directory; {os.cpu_count()} CPUs")
        print(f"input:  {args.rows:,} generated yellow trips, {source.stat().st_size / 2**20:,.0f} MiB parquet")
        print(f"output: {output.stat().st_size / 2**20:,.0f} MiB parquet")
        rate = f"{run.rows_per_second:,.0f} rows/s"
        print(f"{run.name}: {run.seconds:.1f} s, peak RSS {run.peak_rss_mb:,.0f} MiB, {rate}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
