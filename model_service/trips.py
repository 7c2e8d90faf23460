"""Read TLC trip parquet files the way the course prepares them.

Real monthly files are messy (pickups from 2009, zero and absurd distances,
nullable ids, int32 ids in some months, refunds as negative fares), so the
rules are spelled out here once, for training and for batch scoring alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from model_service.errors import BadInputFile, InputNotFound
from model_service.schema import MAX_TRIP_DISTANCE_MILES

if TYPE_CHECKING:
    import pandas as pd

ID_COLUMNS = ("PULocationID", "DOLocationID")
MIN_DURATION_MINUTES = 1
MAX_DURATION_MINUTES = 60
FARE_COLUMN = "fare_amount"
"""The metered fare in USD: time and distance, without tips, tolls, taxes or surcharges."""
MIN_FARE_USD = 2.5
"""NYC's initial charge in 2021: no metered trip costs less."""
MAX_FARE_USD = 1000.0


def ride_id_prefix(year: int, month: int) -> str:
    """The course's ride ids are ``"2021/02_<row>"``; the month prefix keeps them unique across months."""
    return f"{year:04d}/{month:02d}_"


def timestamp_columns(columns: list[str]) -> tuple[str, str] | None:
    """(pickup, dropoff) for green (lpep_), yellow (tpep_) or FHV-style files, if present."""
    for prefix in ("lpep_", "tpep_", ""):
        pickup, dropoff = f"{prefix}pickup_datetime", f"{prefix}dropoff_datetime"
        if pickup in columns and dropoff in columns:
            return pickup, dropoff
    return None


def add_duration(trips: pd.DataFrame, name: str = "trips") -> pd.DataFrame:
    """Add ``duration`` in minutes from the pickup and dropoff timestamps; ``name`` says whose, in errors."""
    columns = timestamp_columns(list(trips.columns))
    if columns is None:
        raise BadInputFile(name, "no pickup/dropoff datetime columns, so no duration")
    pickup, dropoff = columns
    trips = trips.copy()
    trips["duration"] = (trips[dropoff] - trips[pickup]).dt.total_seconds() / 60
    return trips


def clean_ids(trips: pd.DataFrame) -> pd.DataFrame:
    """Drop trips without zone ids and make the ids plain int64 (some months ship int32 or floats)."""
    trips = trips.dropna(subset=list(ID_COLUMNS))
    return trips.astype({c: "int64" for c in ID_COLUMNS})


def read_training_trips(path: str) -> pd.DataFrame:
    """Trips of 1 to 60 minutes with their duration, as the course trains on them, and their fare if the file has it."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise InputNotFound(f"{path}: no such file")
    try:
        names = pq.read_schema(path).names
        columns = timestamp_columns(names)
        if columns is None:
            raise BadInputFile(path, "no pickup/dropoff datetime columns, so no duration to learn")
        extra = [FARE_COLUMN] if FARE_COLUMN in names else []
        trips = pd.read_parquet(path, columns=[*columns, *ID_COLUMNS, "trip_distance", *extra])
    except (OSError, pa.ArrowException) as exc:
        raise BadInputFile(path, f"is not a readable TLC trips parquet file ({exc})") from None
    trips = clean_ids(add_duration(trips, path)).dropna(subset=["trip_distance"])
    keep = trips["duration"].between(MIN_DURATION_MINUTES, MAX_DURATION_MINUTES)
    return trips[keep]


def learnable(trips: pd.DataFrame, column: str) -> pd.DataFrame:
    """The training trips whose ``column`` a model may learn from.

    Duration: every trip of 1 to 60 minutes, as the course has it. A fare
    also needs to be one the meter could have charged for the trip as the
    features describe it: from NYC's initial charge (2.50 USD in 2021) to
    MAX_FARE_USD, since a smaller or negative fare is a refund, a correction or
    a no-charge trip, and a larger one a keying error; and a distance from
    more than 0 to the ride schema's 500 miles, since a fare with no distance,
    or with an odometer glitch of thousands of miles, is not explained by it.
    """
    import numpy as np

    if column not in trips.columns:
        return trips.iloc[:0]
    values = trips[column].to_numpy(dtype="float64", na_value=np.nan)
    keep = np.isfinite(values)
    if column == FARE_COLUMN:
        distance = trips["trip_distance"].to_numpy(dtype="float64")
        keep &= (values >= MIN_FARE_USD) & (values <= MAX_FARE_USD)
        keep &= (distance > 0) & (distance <= MAX_TRIP_DISTANCE_MILES)
    return trips[keep]
