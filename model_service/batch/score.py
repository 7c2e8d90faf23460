"""Batch scoring: a monthly TLC trip file in, the course's predictions file out.

The file is streamed in chunks (``ParquetFile.iter_batches``) and written chunk
by chunk (``ParquetWriter``), so memory stays bounded by the chunk size, not the
month's size; each chunk is one vectorised predict call.

Every input row gets one output row, in input order. A row the model cannot
score (a null or out-of-range zone id, a null, negative or absurd distance: the
same bounds the ride schema puts on a web or Kinesis ride) keeps its row with a
null ``predicted_duration`` and ``diff``, and is counted in the report, so a
month's output always lines up with its input.

A file is judged before any row is scored: it must be a readable parquet file
whose columns have the types the ride schema accepts (integer or float zone ids
and distances, never booleans or text; real timestamps). Anything else is a
``BadInputFile`` naming the file, the column and what is wrong. Where the input
and output live, and how the output appears only when complete: ``storage``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model_service.batch import storage
from model_service.config import DEFAULT_CHUNK_ROWS
from model_service.errors import BadInputFile
from model_service.model.features import FEATURE_COLUMNS
from model_service.model.target import DURATION, Target
from model_service.schema import MAX_TRIP_DISTANCE_MILES, MAX_ZONE_ID
from model_service.trips import ID_COLUMNS, add_duration, timestamp_columns

if TYPE_CHECKING:
    from model_service.service import RideModels


@dataclass(frozen=True)
class TargetColumns:
    """Where one model's answers go in the output file, and the input column its actual value comes from."""

    target: Target
    actual: str
    predicted: str
    diff: str
    version: str

    @classmethod
    def of(cls, target: Target) -> TargetColumns:
        """The course's names for duration (``predicted_duration``, ``diff``, ``model_version``), else by target."""
        if target.name == DURATION.name:
            return cls(target, "actual_duration", "predicted_duration", "diff", "model_version")
        name = target.name
        return cls(target, f"actual_{name}", f"predicted_{name}", f"{name}_diff", f"{name}_model_version")


@dataclass(frozen=True)
class ScoreReport:
    rows: int
    predicted: int
    seconds: float

    @property
    def unpredicted(self) -> int:
        """Rows written with a null prediction (null or out-of-range ids or distance)."""
        return self.rows - self.predicted

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def score_file(
    models: RideModels,
    input_path: str,
    output_path: str,
    *,
    ride_id_prefix: str = "",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: TextIO | None = None,
) -> ScoreReport:
    """Score ``input_path`` into ``output_path`` (each local or ``s3://``); a progress line per chunk if asked.

    Raises InputNotFound, BadInputFile or UnsafeOutput (all ServiceErrors) for what the caller must fix;
    the output then is left as it was.
    """
    storage.refuse_unsafe_output(input_path, output_path)
    targets = [TargetColumns.of(service.target) for service in models.services]
    with storage.local_copy(input_path) as local_input, _open(local_input, input_path) as parquet:
        timestamps = _check_columns(parquet.schema_arrow, input_path, targets)
        with storage.complete_output(output_path) as local_output:
            job = _Job(models, targets, timestamps, _actual_columns(parquet.schema_arrow, targets), ride_id_prefix)
            return _score(job, parquet, input_path, local_output, chunk_rows, progress)


def _open(local_path: str, name: str) -> pq.ParquetFile:
    # pre_buffer=False: with pyarrow's default pre-buffering, iter_batches keeps
    # what it buffered until the iteration ends, so memory grew with the file
    # (about 18 MB per million rows here); without it, it stays flat. Page
    # checksums, where the writer stored them, catch corruption that would
    # otherwise decode as wrong values.
    try:
        return pq.ParquetFile(local_path, pre_buffer=False, page_checksum_verification=True)
    except (OSError, pa.ArrowException) as exc:
        reason = "is empty (0 bytes)" if "size is 0 bytes" in str(exc) else f"is not a readable parquet file ({exc})"
        raise BadInputFile(name, reason) from None


def _check_columns(schema: pa.Schema, name: str, targets: list[TargetColumns]) -> tuple[str, str] | None:
    """The ride schema's rules on column types, before any row is read; returns the timestamp columns."""
    missing = [c for c in FEATURE_COLUMNS if c not in schema.names]
    if missing:
        raise BadInputFile(name, f"no {', '.join(missing)} column, so nothing to score")
    timestamps = timestamp_columns(schema.names)
    actuals = _actual_columns(schema, targets)
    for column in (*FEATURE_COLUMNS, *(timestamps or ()), *actuals):
        if len(schema.get_all_field_indices(column)) > 1:
            raise BadInputFile(name, "appears more than once", column)
    for column in actuals:
        kind = schema.field(column).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise BadInputFile(name, f"must be a number, not {kind}", column)
    for column in ID_COLUMNS:
        kind = schema.field(column).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise BadInputFile(name, f"zone ids must be integers from 1 to {MAX_ZONE_ID}, not {kind}", column)
    kind = schema.field("trip_distance").type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        raise BadInputFile(name, f"must be a number of miles, not {kind}", "trip_distance")
    if timestamps:
        kinds = [schema.field(column).type for column in timestamps]
        for column, kind in zip(timestamps, kinds, strict=True):
            if not pa.types.is_timestamp(kind):
                raise BadInputFile(
                    name, f"must be a parquet timestamp, not {kind} (text and epoch numbers are not read)", column
                )
        if kinds[0].tz != kinds[1].tz:
            raise BadInputFile(
                name, f"time zone {kinds[1].tz} differs from {timestamps[0]}'s ({kinds[0].tz})", timestamps[1]
            )
    return timestamps


def _actual_columns(schema: pa.Schema, targets: list[TargetColumns]) -> list[str]:
    """The input columns the targets' actual values are read from, where the file has them (a fare, not a duration)."""
    return [t.target.actual for t in targets if t.target.actual != DURATION.actual and t.target.actual in schema.names]


@dataclass(frozen=True)
class _Job:
    """What every chunk of one file is scored with, and which of the targets' actual values the file holds."""

    models: RideModels
    targets: list[TargetColumns]
    timestamps: tuple[str, str] | None
    actual_columns: list[str]
    prefix: str

    def has_actual(self, target: Target) -> bool:
        if target.actual == DURATION.actual:
            return self.timestamps is not None
        return target.actual in self.actual_columns


def _score(
    job: _Job, parquet: pq.ParquetFile, name: str, output_path: str, chunk_rows: int, progress: TextIO | None
) -> ScoreReport:
    schema = _output_schema(parquet.schema_arrow, job)
    total = parquet.metadata.num_rows
    start = time.perf_counter()
    rows = predicted = 0
    columns = [*(job.timestamps or ()), *FEATURE_COLUMNS, *job.actual_columns]
    with pq.ParquetWriter(output_path, schema) as writer:
        for batch in _chunks(parquet, name, columns, chunk_rows):
            table, chunk_predicted = _score_chunk(job, batch, schema, rows)
            writer.write_table(table)
            rows += batch.num_rows
            predicted += chunk_predicted
            if progress is not None:
                elapsed = time.perf_counter() - start
                print(
                    f"scored {rows:,}/{total:,} rows ({rows / max(total, 1):.0%}), {rows / elapsed:,.0f} rows/s",
                    file=progress,
                    flush=True,
                )
    return ScoreReport(rows=rows, predicted=predicted, seconds=time.perf_counter() - start)


def _chunks(parquet: pq.ParquetFile, name: str, columns: list[str], chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """The file's chunks; a page that cannot be read or decoded is a BadInputFile naming its column.

    Only reading is guarded here, so an error while scoring or writing is never blamed on the input.
    """
    batches = parquet.iter_batches(batch_size=chunk_rows, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as exc:
            raise _unreadable(parquet, name, columns, exc) from None
        yield batch


def _unreadable(parquet: pq.ParquetFile, name: str, columns: list[str], error: Exception) -> BadInputFile:
    """Which column holds the bad data: each is read alone, one row group at a time (only once reading failed)."""
    for column in columns:
        for group in range(parquet.metadata.num_row_groups):
            try:
                parquet.read_row_group(group, columns=[column])
            except (OSError, pa.ArrowException) as exc:
                return BadInputFile(name, f"data in row group {group} cannot be read ({exc})", column)
    return BadInputFile(name, f"data cannot be read ({error})")


def _output_schema(input_schema: pa.Schema, job: _Job) -> pa.Schema:
    """The course's columns, then each other target's; the pickup column keeps its name (lpep_/tpep_) and type.

    A target's actual value and its difference are there only when the file
    holds what the actual comes from (the times for a duration, the fare for a cost).
    """
    fields = [pa.field("ride_id", pa.string())]
    if job.timestamps:
        fields.append(input_schema.field(job.timestamps[0]))
    fields += [pa.field("PULocationID", pa.int64()), pa.field("DOLocationID", pa.int64())]
    for columns in job.targets:
        known = job.has_actual(columns.target)
        if known:
            fields.append(pa.field(columns.actual, pa.float64()))
        fields.append(pa.field(columns.predicted, pa.float64()))
        if known:
            fields.append(pa.field(columns.diff, pa.float64()))
        fields.append(pa.field(columns.version, pa.string()))
    return pa.schema(fields)


def _score_chunk(job: _Job, batch: pa.RecordBatch, schema: pa.Schema, first_row: int) -> tuple[pa.Table, int]:
    trips = batch.to_pandas()
    pu, do = (_zone_ids(trips[c]) for c in ID_COLUMNS)
    distance = trips["trip_distance"].to_numpy(dtype="float64", na_value=np.nan)
    scorable = pu.notna().to_numpy() & do.notna().to_numpy() & _between(distance, 0, MAX_TRIP_DISTANCE_MILES)

    predicted = {name: np.full(len(trips), np.nan) for name in job.models.versions}
    if scorable.any():
        answers = job.models.predict_columns(
            pu.to_numpy()[scorable].astype("int64"), do.to_numpy()[scorable].astype("int64"), distance[scorable]
        )
        for name, values in answers.items():
            predicted[name][scorable] = values
    # A model's NaN or infinity is no prediction: written as null, and the row counted as not predicted.
    answered = scorable.copy()
    for values in predicted.values():
        finite = np.isfinite(values)
        values[~finite] = np.nan
        answered &= finite

    row_numbers = pc.cast(pa.array(np.arange(first_row, first_row + len(trips))), pa.string())
    columns: dict[str, pa.Array] = {
        "ride_id": pc.binary_join_element_wise(job.prefix, row_numbers, ""),
        "PULocationID": pa.array(pu, type=pa.int64()),
        "DOLocationID": pa.array(do, type=pa.int64()),
    }
    if job.timestamps:
        columns[job.timestamps[0]] = batch.column(job.timestamps[0])
    versions = job.models.versions
    for target_columns in job.targets:
        target = target_columns.target
        values = predicted[target.name]
        columns[target_columns.predicted] = pa.array(values, from_pandas=True)
        columns[target_columns.version] = pa.repeat(pa.scalar(versions[target.name]), len(trips))
        if job.has_actual(target):
            actual = _actual(trips, target)
            columns[target_columns.actual] = pa.array(actual, from_pandas=True)
            columns[target_columns.diff] = pa.array(actual - values, from_pandas=True)
    table = pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)
    return table, int(answered.sum())


def _actual(trips: pd.DataFrame, target: Target) -> np.ndarray:
    if target.actual == DURATION.actual:
        return add_duration(trips)["duration"].to_numpy(dtype="float64", na_value=np.nan)
    return trips[target.actual].to_numpy(dtype="float64", na_value=np.nan)


def _zone_ids(ids: pd.Series) -> pd.Series:
    """Ids as nullable int64, null where the schema would reject them (null, fractional, out of range)."""
    values = ids.to_numpy(dtype="float64", na_value=np.nan)
    valid = _between(values, 1, MAX_ZONE_ID) & (np.floor(values) == values)
    return pd.Series(np.where(valid, values, np.nan)).astype("Int64")


def _between(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Elementwise low <= value <= high; NaN and infinities are outside."""
    return np.isfinite(values) & (values >= low) & (values <= high)
