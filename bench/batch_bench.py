"""Time ``python -m model_service score`` on a month-sized file, beside the course's batch job.

    .venv/bin/python -m bench.batch_bench [--rows 1000000]

Generates TLC-shaped green-taxi trips (several row groups, as the TLC writes
them) in a temporary directory, scores them with each job in its own process
with the same model, and reports wall time, rows/s over the input rows and the
process's peak RSS. The course's job scores only the trips of 1 to 60 minutes
(about 97% of these) and ours scores every row, so rows/s counts input rows for both.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import ROOT, bench_model
from model_service.sample_data import make_trips

COURSE_JOB = Path(__file__).resolve().parent / "baselines" / "course_batch_score.py"


@dataclass(frozen=True)
class Run:
    name: str
    rows: int
    seconds: float
    peak_rss_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def write_month(path: Path, rows: int, row_group_rows: int) -> None:
    table = pa.Table.from_pandas(make_trips(rows, seed=1), preserve_index=False)
    pq.write_table(table, path, row_group_size=row_group_rows)


# A child's ru_maxrss counts the pages it inherits at fork, and this process
# holds the generated month, so each job is started from a fresh, small
# interpreter that times it and reports its own peak RSS.
MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
job = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(job.pid, 0)
job.returncode = os.waitstatus_to_exitcode(status)
print(job.returncode, time.perf_counter() - start, usage.ru_maxrss)
"""


def timed(name: str, argv: list[str], rows: int, env: dict[str, str]) -> Run:
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    code, seconds, max_rss_kib = measured.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"{name} exited with {code}:\n{measured.stderr}")
    return Run(name, rows, float(seconds), int(max_rss_kib) / 1024)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--row-group-rows", type=int, default=250_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        workdir = Path(tmp)
        model, model_description = bench_model(workdir)
        source = workdir / "green_tripdata_2021-01.parquet"
        write_month(source, args.rows, args.row_group_rows)
        groups = pq.ParquetFile(source).metadata.num_row_groups
        print(f"model: {model_description}; {os.cpu_count()} CPUs")
        print(f"input: {args.rows:,} generated trips in {groups} row groups, {source.stat().st_size / 2**20:.0f} MiB")

        env = {**os.environ, "MODEL_URI": str(model), "MODEL_VERSION": "bench"}
        ours_argv = [sys.executable, "-m", "model_service", "score", "--input", str(source)]
        ours = timed(
            "python -m model_service score",
            [*ours_argv, "--output", str(workdir / "ours.parquet"), "--year", "2021", "--month", "1"],
            args.rows,
            env,
        )
        course = timed(
            "course score.py (whole file in pandas)",
            [sys.executable, str(COURSE_JOB), str(source), str(workdir / "course.parquet"), str(model), "bench"],
            args.rows,
            env,
        )

    print(f"{'job':<40} {'seconds':>8} {'rows/s':>10} {'peak RSS MiB':>13}")
    for run in (ours, course):
        print(f"{run.name:<40} {run.seconds:>8.2f} {run.rows_per_second:>10,.0f} {run.peak_rss_mb:>13,.0f}")
    print(
        f"ours / course: {ours.rows_per_second / course.rows_per_second:.2f}x rows/s, "
        f"{ours.peak_rss_mb / course.peak_rss_mb:.2f}x peak RSS"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
