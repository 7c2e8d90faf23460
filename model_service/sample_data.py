"""TLC-shaped trip data for demos, tests and benchmarks where the real files are absent.

The columns and types are the TLC's green-taxi ones, so every reader in the
project runs on these frames unchanged; durations grow with distance so a
model trained on them learns something.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COURSE_MONTHS = ("green_tripdata_2021-01.parquet", "green_tripdata_2021-02.parquet")
"""The course's training and validation months."""


PICKUP_PREFIXES = {"green": "lpep_", "yellow": "tpep_"}
"""How the TLC names each taxi type's timestamp columns (``lpep_pickup_datetime``, ``tpep_pickup_datetime``)."""


def make_trips(n: int, seed: int = 0, start: str = "2021-01-01", taxi_type: str = "green") -> pd.DataFrame:
    """Green- (or yellow-) taxi trips with the TLC's column names and types; duration grows with distance."""
    rng = np.random.default_rng(seed)
    pickup = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, 28 * 24 * 3600, n), unit="s")
    distance = rng.gamma(2.0, 1.5, n).round(2)
    pu = rng.integers(1, 266, n)
    do = rng.integers(1, 266, n)
    minutes = 3 + 3.5 * distance + (pu % 7) + rng.normal(0, 2, n)
    prefix = PICKUP_PREFIXES[taxi_type]
    return pd.DataFrame(
        {
            "VendorID": np.full(n, 2, dtype="int64"),
            f"{prefix}pickup_datetime": pickup.astype("datetime64[us]"),
            f"{prefix}dropoff_datetime": (pickup + pd.to_timedelta(minutes * 60, unit="s")).astype("datetime64[us]"),
            "store_and_fwd_flag": np.full(n, "N", dtype=object),
            "RatecodeID": np.full(n, 1.0),
            "PULocationID": pu.astype("int64"),
            "DOLocationID": do.astype("int64"),
            "passenger_count": np.full(n, 1.0),
            "trip_distance": distance,
            "fare_amount": (2.5 + distance * 2.5).round(2),
            "ehail_fee": np.full(n, None, dtype=object),
            "payment_type": np.full(n, 1.0),
            "trip_type": np.full(n, 1.0),
        }
    )


def training_months(shared_data: Path, directory: Path, rows: int = 60_000) -> tuple[Path, Path]:
    """January and February 2021 in ``directory``: the course's files copied from ``shared_data``, or look-alikes.

    Either way the months are where the batch defaults look for them
    (BATCH_INPUT_TEMPLATE: ``data/{taxi_type}_tripdata_{year:04d}-{month:02d}.parquet``),
    so ``score --taxi-type green --year 2021 --month 2`` runs on a fresh clone once
    the demo has trained. Files are written once, generated ones ``rows`` trips
    each, and kept for the next run; a file already there is never replaced.
    """
    import shutil

    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / COURSE_MONTHS[0], directory / COURSE_MONTHS[1])
    months = zip(paths, ("2021-01", "2021-02"), (1, 2), strict=True)
    missing = [(path, start, seed) for path, start, seed in months if not path.exists()]
    if not missing:
        return paths
    shared = all((shared_data / name).exists() for name in COURSE_MONTHS)
    names = ", ".join(path.name for path, _, _ in missing)
    if shared:
        print(f"copying {names} from {shared_data} to {directory}", flush=True)
    else:
        print(f"generating TLC-shaped trips in {directory}: {names} ({shared_data} is absent)", flush=True)
    for path, start, seed in missing:
        partial = path.with_name(f".{path.name}.partial")  # never a half-written month where scoring looks
        if shared:
            shutil.copyfile(shared_data / path.name, partial)
        else:
            make_trips(rows, seed=seed, start=f"{start}-01").to_parquet(partial)
        partial.replace(path)
    return paths
