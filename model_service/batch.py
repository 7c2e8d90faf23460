"""Batch scoring: a monthly TLC trip file in, the course's predictions file out.

The file is streamed in chunks (``ParquetFile.iter_batches``) and written chunk
by chunk (``ParquetWriter``), so memory stays bounded by the chunk size, not the
month's size; each chunk is one vectorised predict call.

Every input row gets one output row, in input order. A row the model cannot
score (a null or out-of-range zone id, a null, negative or absurd distance: the
same bounds the ride schema puts on a web or Kinesis ride) keeps its row with a
null ``predicted_duration`` and ``diff``, and is counted in the report, so a
month's output always lines up with its input.

``s3://`` paths go through boto3, which honours AWS_ENDPOINT_URL and moto;
pyarrow's own S3 filesystem would need its endpoint passed separately and
escapes moto. The input is downloaded to a temporary file first and the output
uploaded once complete, which costs local disk the size of both files, not memory.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model_service.config import Settings
from model_service.features import FEATURE_COLUMNS
from model_service.schema import MAX_TRIP_DISTANCE_MILES, MAX_ZONE_ID
from model_service.trips import ID_COLUMNS, add_duration, timestamp_columns

if TYPE_CHECKING:
    from model_service.service import PredictionService


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


def month_paths(input_template: str, output_template: str, *, taxi_type: str, year: int, month: int) -> tuple[str, str]:
    """Fill the templates, so a scheduler runs the job with just a taxi type and a month."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1 to 12, not {month}")
    fields = {"taxi_type": taxi_type, "year": year, "month": month}
    try:
        return input_template.format(**fields), output_template.format(**fields)
    except (KeyError, IndexError) as exc:
        raise ValueError(f"path templates may use only {{taxi_type}}, {{year}} and {{month}}: {exc}") from None


def score_file(
    service: PredictionService,
    input_path: str,
    output_path: str,
    *,
    ride_id_prefix: str = "",
    chunk_rows: int = Settings().batch_chunk_rows,
    progress: TextIO | None = None,
) -> ScoreReport:
    """Score ``input_path`` into ``output_path`` (each local or ``s3://``); a progress line per chunk if asked."""
    with _local_input(input_path) as local_input, _local_output(output_path) as local_output:
        return _score(service, local_input, local_output, ride_id_prefix, chunk_rows, progress)


def _score(
    service: PredictionService,
    input_path: str,
    output_path: str,
    prefix: str,
    chunk_rows: int,
    progress: TextIO | None,
) -> ScoreReport:
    # pre_buffer=False: with pyarrow's default pre-buffering, iter_batches keeps
    # what it buffered until the iteration ends, so memory grew with the file
    # (about 18 MB per million rows here); without it, it stays flat.
    parquet = pq.ParquetFile(input_path, pre_buffer=False)
    names = parquet.schema_arrow.names
    missing = [c for c in FEATURE_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{input_path}: no {', '.join(missing)} column, so nothing to score")
    timestamps = timestamp_columns(names)
    schema = _output_schema(parquet.schema_arrow, timestamps)
    total = parquet.metadata.num_rows
    start = time.perf_counter()
    rows = predicted = 0
    with pq.ParquetWriter(output_path, schema) as writer:
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=[*(timestamps or ()), *FEATURE_COLUMNS]):
            table, chunk_predicted = _score_chunk(service, batch, schema, timestamps, prefix, rows)
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


def _output_schema(input_schema: pa.Schema, timestamps: tuple[str, str] | None) -> pa.Schema:
    """The course's columns; the pickup column keeps its name (lpep_/tpep_) and type."""
    fields = [pa.field("ride_id", pa.string())]
    if timestamps:
        fields.append(input_schema.field(timestamps[0]))
    fields += [pa.field("PULocationID", pa.int64()), pa.field("DOLocationID", pa.int64())]
    if timestamps:
        fields.append(pa.field("actual_duration", pa.float64()))
    fields.append(pa.field("predicted_duration", pa.float64()))
    if timestamps:
        fields.append(pa.field("diff", pa.float64()))
    fields.append(pa.field("model_version", pa.string()))
    return pa.schema(fields)


def _score_chunk(
    service: PredictionService,
    batch: pa.RecordBatch,
    schema: pa.Schema,
    timestamps: tuple[str, str] | None,
    prefix: str,
    first_row: int,
) -> tuple[pa.Table, int]:
    trips = batch.to_pandas()
    pu, do = (_zone_ids(trips[c]) for c in ID_COLUMNS)
    distance = trips["trip_distance"].to_numpy(dtype="float64", na_value=np.nan)
    scorable = pu.notna().to_numpy() & do.notna().to_numpy() & _between(distance, 0, MAX_TRIP_DISTANCE_MILES)

    predicted = np.full(len(trips), np.nan)
    if scorable.any():
        predicted[scorable] = service.predict_columns(
            pu.to_numpy()[scorable].astype("int64"), do.to_numpy()[scorable].astype("int64"), distance[scorable]
        )

    row_numbers = pc.cast(pa.array(np.arange(first_row, first_row + len(trips))), pa.string())
    columns: dict[str, pa.Array] = {
        "ride_id": pc.binary_join_element_wise(prefix, row_numbers, ""),
        "PULocationID": pa.array(pu, type=pa.int64()),
        "DOLocationID": pa.array(do, type=pa.int64()),
        "predicted_duration": pa.array(predicted, from_pandas=True),
        "model_version": pa.repeat(pa.scalar(service.version), len(trips)),
    }
    if timestamps:
        actual = add_duration(trips)["duration"].to_numpy(dtype="float64", na_value=np.nan)
        columns[timestamps[0]] = batch.column(timestamps[0])
        columns["actual_duration"] = pa.array(actual, from_pandas=True)
        columns["diff"] = pa.array(actual - predicted, from_pandas=True)
    table = pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)
    return table, int(scorable.sum())


def _zone_ids(ids: pd.Series) -> pd.Series:
    """Ids as nullable int64, null where the schema would reject them (null, fractional, out of range)."""
    values = ids.to_numpy(dtype="float64", na_value=np.nan)
    valid = _between(values, 1, MAX_ZONE_ID) & (np.floor(values) == values)
    return pd.Series(np.where(valid, values, np.nan)).astype("Int64")


def _between(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Elementwise low <= value <= high; NaN and infinities are outside."""
    return np.isfinite(values) & (values >= low) & (values <= high)


@contextmanager
def _local_input(path: str) -> Iterator[str]:
    if not path.startswith("s3://"):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file")
        yield path
        return
    from botocore.exceptions import ClientError

    bucket, key = _split_s3(path)
    with tempfile.TemporaryDirectory(prefix="score-input-") as tmp:
        local = Path(tmp) / Path(key).name
        try:
            _s3().download_file(bucket, key, str(local))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NoSuchBucket"}:
                raise FileNotFoundError(f"{path}: no such object") from None
            raise
        yield str(local)


@contextmanager
def _local_output(path: str) -> Iterator[str]:
    """A local file to write; it replaces ``path`` only once complete, so a failed run leaves no partial output."""
    if path.startswith("s3://"):
        bucket, key = _split_s3(path)
        with tempfile.TemporaryDirectory(prefix="score-output-") as tmp:
            local = Path(tmp) / Path(key).name
            yield str(local)
            _s3().upload_file(str(local), bucket, key)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        yield str(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ValueError(f"{uri}: an S3 path needs a bucket and a key, s3://bucket/key")
    return bucket, key


def _s3() -> Any:
    import boto3

    return boto3.client("s3")
