"""Time ``python -m model_service score`` on month-sized files, beside the course's batch job.

    .venv/bin/python -m bench.batch_bench [--rows 1000000] [--large-rows 5000000] [--small-rows 20000]

Generates TLC-shaped green-taxi trips (row groups of 250,000, as the TLC
writes them) in a temporary directory and scores them with each job in its
own process, with the same duration model (the course's lin_reg.bin, else one
trained on generated trips; ours reads it as training logs models, an MLflow
model with its weight table), side by side in this run. Ours runs twice: with
the duration model alone, as the course's job, and with the cost model too
(trained on generated trips), as deployed:

- ``--rows`` and ``--small-rows``, both jobs: the rate with start-up excluded
  is (rows - small rows) / (seconds at rows - seconds at small rows), so the
  interpreter, imports and model load, paid once per run, drop out;
- ``--large-rows``, ours with both models only: peak RSS as the month grows
  (the course's job reads the whole file into pandas, so its memory grows
  with it).

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

from bench.common import ROW_GROUP_ROWS, as_mlflow_model, bench_model, cost_model, machine, measured, write_month

COURSE_JOB = Path(__file__).resolve().parent / "baselines" / "course_batch_score.py"
SPEED_TARGET = 10
"""Issue 11: ours with the duration model, against the course's job."""
BOTH_SPEED_TARGET = 8
"""Issue 17: ours with the duration and cost models, against the course's job with its one model."""
RSS_TARGET_MIB = 400


@dataclass(frozen=True)
class Run:
    rows: int
    seconds: float
    peak_rss_mib: float


def score(job: str, source: Path, workdir: Path, model: Path, repeat: int) -> Run:
    output = str(workdir / f"{job}-{source.stem}.parquet")
    if job in OURS:
        argv = [sys.executable, "-m", "model_service", "score", "--input", str(source), "--output", output]
        argv += ["--year", "2021", "--month", "1", "--model-uri", str(workdir / "mlflow-model")]
        if job == "ours-both":
            argv += ["--model-uri", str(workdir / "cost-model")]
    else:
        argv = [sys.executable, str(COURSE_JOB), str(source), output, str(model), "bench"]
    runs = [measured(argv, dict(os.environ)) for _ in range(repeat)]
    rows = pq.ParquetFile(source).metadata.num_rows
    return Run(rows, min(r.seconds for r in runs), max(r.peak_rss_mib for r in runs))


OURS = ("ours", "ours-both")
NAMES = {
    "ours": "python -m model_service score (duration)",
    "ours-both": "python -m model_service score (duration and cost)",
    "course": "course score.py (whole file in pandas, duration)",
}


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
        cost_model(workdir)
        sizes = sorted({args.small_rows, args.rows, *([args.large_rows] if args.large_rows else [])})
        files = {rows: workdir / f"green_tripdata_{rows}.parquet" for rows in sizes}
        for rows, path in files.items():
            write_month(path, rows)
        both = (args.small_rows, args.rows)
        runs = {("course", rows): score("course", files[rows], workdir, model, args.repeat) for rows in both}
        runs |= {("ours", rows): score("ours", files[rows], workdir, model, args.repeat) for rows in both}
        runs |= {("ours-both", rows): score("ours-both", files[rows], workdir, model, args.repeat) for rows in sizes}

    print(f"machine: {machine()}")
    print(f"duration model: {model_description}; the cost model: trained on generated trips")
    print(f"input: generated TLC-shaped trips, row groups of {ROW_GROUP_ROWS:,}; best of {args.repeat} runs\n")
    print(f"{'job':<52} {'rows':>10} {'seconds':>8} {'peak RSS MiB':>13}")
    order = {"ours": 0, "ours-both": 1, "course": 2}
    for (job, rows), run in sorted(runs.items(), key=lambda item: (order[item[0][0]], item[0][1])):
        print(f"{NAMES[job]:<52} {rows:>10,} {run.seconds:>8.2f} {run.peak_rss_mib:>13,.0f}")
    rates = {job: steady_rate(runs[job, args.small_rows], runs[job, args.rows]) for job in order}
    span = f"{args.rows:,} rows minus {args.small_rows:,}"
    print(f"\nstart-up excluded ({span}): " + ", ".join(f"{job} {rate:,.0f} rows/s" for job, rate in rates.items()))
    print(f"ours, duration alone, vs course: {rates['ours'] / rates['course']:.1f}x rows/s (target >= {SPEED_TARGET}x)")
    print(
        f"ours, duration and cost, vs course (duration): {rates['ours-both'] / rates['course']:.1f}x rows/s"
        f" (target >= {BOTH_SPEED_TARGET}x)"
    )
    largest = max(run.peak_rss_mib for (job, _), run in runs.items() if job == "ours-both")
    print(
        f"ours with both models, peak RSS at {' and '.join(f'{r:,}' for r in sizes if r != args.small_rows)} rows: ",
        end="",
    )
    print(f"at most {largest:,.0f} MiB (target <= {RSS_TARGET_MIB} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
