"""Time ``python -m model_service score`` on month-sized files, beside the course's batch job.

    .venv/bin/python -m bench.batch_bench [--rows 1000000] [--large-rows 5000000] [--small-rows 20000]

Generates TLC-shaped green-taxi trips (row groups of 250,000, as the TLC
writes them) in a temporary directory and scores them with each job in its
own process, with the same model (the course's lin_reg.bin, else one trained
on generated trips; ours reads it as training logs models, an MLflow model
with its weight table), side by side in this run:

- ``--rows`` and ``--small-rows``, both jobs: the rate with start-up excluded
  is (rows - small rows) / (seconds at rows - seconds at small rows), so the
  interpreter, imports and model load, paid once per run, drop out;
- ``--large-rows``, ours only: peak RSS as the month grows (the course's job
  reads the whole file into pandas, so its memory grows with it).

Each run is repeated (``--repeat``) and its best time kept, the one least
disturbed by the machine's other work; peak RSS is the largest seen.

The course's job scores only the trips of 1 to 60 minutes (about 97% of
these) and ours scores every row, so rows/s counts input rows for both.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from bench.common import ROW_GROUP_ROWS, as_mlflow_model, bench_model, machine, measured, write_month

COURSE_JOB = Path(__file__).resolve().parent / "baselines" / "course_batch_score.py"
SPEED_TARGET = 10
RSS_TARGET_MIB = 400


@dataclass(frozen=True)
class Run:
    rows: int
    seconds: float
    peak_rss_mib: float


def score(job: str, source: Path, workdir: Path, model: Path, repeat: int) -> Run:
    output = str(workdir / f"{job}-{source.stem}.parquet")
    if job == "ours":
        argv = [sys.executable, "-m", "model_service", "score", "--input", str(source), "--output", output]
        argv += ["--year", "2021", "--month", "1", "--model-uri", str(workdir / "mlflow-model")]
    else:
        argv = [sys.executable, str(COURSE_JOB), str(source), output, str(model), "bench"]
    runs = [measured(argv, {**os.environ, "MODEL_VERSION": "bench"}) for _ in range(repeat)]
    rows = pq.ParquetFile(source).metadata.num_rows
    return Run(rows, min(r.seconds for r in runs), max(r.peak_rss_mib for r in runs))


def steady_rate(small: Run, large: Run) -> float:
    """Rows per second once started: the extra rows over the extra seconds."""
    return (large.rows - small.rows) / (large.seconds - small.seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--large-rows", type=int, default=5_000_000, help="ours only, for peak RSS; 0 to skip")
    parser.add_argument("--small-rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each job and size; the best time is kept")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        workdir = Path(tmp)
        model, model_description = bench_model(workdir)
        as_mlflow_model(model, workdir / "mlflow-model")
        sizes = sorted({args.small_rows, args.rows, *([args.large_rows] if args.large_rows else [])})
        files = {rows: workdir / f"green_tripdata_{rows}.parquet" for rows in sizes}
        for rows, path in files.items():
            write_month(path, rows)
        runs = {
            ("course", rows): score("course", files[rows], workdir, model, args.repeat)
            for rows in (args.small_rows, args.rows)
        }
        runs |= {("ours", rows): score("ours", files[rows], workdir, model, args.repeat) for rows in sizes}

    print(f"machine: {machine()}")
    print(f"model: {model_description}")
    print(f"input: generated TLC-shaped trips, row groups of {ROW_GROUP_ROWS:,}; best of {args.repeat} runs\n")
    print(f"{'job':<44} {'rows':>10} {'seconds':>8} {'peak RSS MiB':>13}")
    names = {"ours": "python -m model_service score", "course": "course score.py (whole file in pandas)"}
    for (job, rows), run in sorted(runs.items(), key=lambda item: (item[0][0] != "ours", item[0][1])):
        print(f"{names[job]:<44} {rows:>10,} {run.seconds:>8.2f} {run.peak_rss_mib:>13,.0f}")
    ours = steady_rate(runs["ours", args.small_rows], runs["ours", args.rows])
    course = steady_rate(runs["course", args.small_rows], runs["course", args.rows])
    span = f"{args.rows:,} rows minus {args.small_rows:,}"
    print(f"\nstart-up excluded ({span}): ours {ours:,.0f} rows/s, course {course:,.0f} rows/s")
    print(f"ours vs course: {ours / course:.1f}x rows/s (target >= {SPEED_TARGET}x)")
    largest = max(rss for (job, _), run in runs.items() if job == "ours" for rss in [run.peak_rss_mib])
    print(f"ours, peak RSS at {' and '.join(f'{r:,}' for r in sizes if r != args.small_rows)} rows: ", end="")
    print(f"at most {largest:,.0f} MiB (target <= {RSS_TARGET_MIB} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
