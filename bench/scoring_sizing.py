"""Size the scoring function: time and peak memory of one yellow-taxi month, as the Lambda runs it.

    .venv/bin/python -m bench.scoring_sizing [--rows 3000000]

Generates a TLC-shaped yellow month (``tpep_`` columns, row groups of 250,000
rows), saves the duration and cost models as the MLflow directories the
function loads in AWS, and
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
import sys
import tempfile
from pathlib import Path

from bench.common import as_mlflow_model, bench_model, cost_model, machine, measured, write_month

RUN_HANDLER = """
import score_function
from stream_tools.local_invoke import LocalContext
print(score_function.lambda_handler({"taxi_type": "yellow", "month": "2023-01"}, LocalContext()))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="scoring-sizing-") as tmp:
        workdir = Path(tmp)
        model_bin, description = bench_model(workdir)
        model_dir = as_mlflow_model(model_bin, workdir / "model")
        source = workdir / "yellow_tripdata_2023-01.parquet"
        write_month(source, args.rows, start="2023-01-01", taxi_type="yellow")
        env = {
            **os.environ,
            "MODEL_URIS": f"{model_dir},{cost_model(workdir)}",
            "BATCH_INPUT_TEMPLATE": str(workdir / "{taxi_type}_tripdata_{year:04d}-{month:02d}.parquet"),
            "BATCH_OUTPUT_TEMPLATE": str(workdir / "out" / "{taxi_type}-{year:04d}-{month:02d}.parquet"),
            "POWERTOOLS_METRICS_NAMESPACE": "Sizing",
        }
        run = measured([sys.executable, "-c", RUN_HANDLER], env)
        output = workdir / "out" / "yellow-2023-01.parquet"
        print(f"models: {description} and a cost model, as MLflow directories; {machine()}")
        print(f"input:  {args.rows:,} generated yellow trips, {source.stat().st_size / 2**20:,.0f} MiB parquet")
        print(f"output: {output.stat().st_size / 2**20:,.0f} MiB parquet")
        rate = f"{args.rows / run.seconds:,.0f} rows/s"
        print(f"score_function (cold start + month): {run.seconds:.1f} s, peak RSS {run.peak_rss_mib:,.0f} MiB, {rate}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
