"""Every setting the service reads from the environment, in one place.

Defaults are for local use (a model trained with ``python -m model_service train``
into the local MLflow store); a deployment overrides them through the template.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MODEL_URIS = ("models:/ride-duration/latest", "models:/ride-cost/latest")
"""The models training registers, duration and cost, in the local MLflow store."""

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

MIB = 1024 * 1024

DEFAULT_CHUNK_ROWS = 100_000
"""Rows batch scoring predicts per vectorised call; bounds its memory whatever the file's size."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _items(value: str) -> tuple[str, ...]:
    """A comma-separated list, blanks around items dropped."""
    return tuple(item.strip() for item in value.split(","))


@dataclass(frozen=True)
class Settings:
    model_uri: str = DEFAULT_MODEL_URIS[0]
    """The one model a stream prediction function serves (the template sets it per consumer)."""
    model_version: str | None = None
    model_uris: tuple[str, ...] = DEFAULT_MODEL_URIS
    """The models the web service and batch scoring serve together, one per target (duration, cost)."""
    model_versions: tuple[str, ...] = ()
    """MODEL_URIS' versions in the same order; empty, or an empty item, keeps the version the model carries."""
    consumer_name: str | None = None
    """Names a prediction function in its event_ids and dead letters; its model's target (duration, cost) if unset."""
    model_allow_pickle: bool = False
    """Let an MLflow model saved with pickle or cloudpickle load; they run code when read (skops never does)."""
    input_stream_name: str = "ride_events"
    """Where ride events arrive; ``produce`` sends to it (the template names it InputStreamName)."""
    predictions_stream_name: str = "ride_predictions"
    dead_letter_stream_name: str = "ride_dead_letters"
    decisions_stream_name: str = "ride_decisions"
    long_ride_threshold_minutes: float = 45.0
    """Decision: a duration event above it is a ``long_ride``."""
    costly_ride_threshold_usd: float = 50.0
    """Decision: a cost event above it is a ``costly_ride``."""
    test_run: bool = False
    publish_margin_seconds: float = 1.0
    """Time an invocation keeps for itself after its last PutRecords call, to report and flush metrics."""
    kinesis_connect_timeout_seconds: float = 2.0
    kinesis_read_timeout_seconds: float = 5.0
    """A PutRecords call lasts at most connect + read timeout; none starts unless that fits before the deadline."""
    tracking_uri: str = DEFAULT_TRACKING_URI
    service_name: str | None = None
    """POWERTOOLS_SERVICE_NAME; each function has its own default."""
    metrics_namespace: str = "RideDuration"
    web_max_body_bytes: int = MIB
    """Larger request bodies get 413; 1 MiB holds about 15,000 rides in one list."""
    web_max_rides: int = 10_000
    """Longer lists of rides get 413: 100 times the batch that already amortises a request's fixed cost."""
    web_max_reported_errors: int = 10
    """A 400 lists this many field errors, then gives the total, so its answer stays small."""
    web_body_timeout: float = 30.0
    """Seconds a request body may send nothing before the request is refused (400) and its connection freed."""
    web_workers: int | None = None
    """Gunicorn worker processes; None means one per CPU this process may run on."""
    batch_input_template: str = "data/{taxi_type}_tripdata_{year:04d}-{month:02d}.parquet"
    batch_output_template: str = "output/{taxi_type}/{year:04d}-{month:02d}.parquet"
    batch_chunk_rows: int = DEFAULT_CHUNK_ROWS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; unset or empty variables keep their local default."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def get(name: str, default: str) -> str:
            return env.get(name) or default

        return cls(
            model_uri=get("MODEL_URI", defaults.model_uri),
            model_version=env.get("MODEL_VERSION") or None,
            model_uris=_items(env["MODEL_URIS"]) if env.get("MODEL_URIS") else defaults.model_uris,
            model_versions=_items(env["MODEL_VERSIONS"]) if env.get("MODEL_VERSIONS") else (),
            consumer_name=env.get("CONSUMER_NAME") or None,
            model_allow_pickle=_flag(env.get("MODEL_ALLOW_PICKLE")),
            input_stream_name=get("INPUT_STREAM_NAME", defaults.input_stream_name),
            predictions_stream_name=get("PREDICTIONS_STREAM_NAME", defaults.predictions_stream_name),
            dead_letter_stream_name=get("DEAD_LETTER_STREAM_NAME", defaults.dead_letter_stream_name),
            decisions_stream_name=get("DECISIONS_STREAM_NAME", defaults.decisions_stream_name),
            long_ride_threshold_minutes=float(
                get("LONG_RIDE_THRESHOLD_MINUTES", str(defaults.long_ride_threshold_minutes))
            ),
            costly_ride_threshold_usd=float(get("COSTLY_RIDE_THRESHOLD_USD", str(defaults.costly_ride_threshold_usd))),
            test_run=_flag(env.get("TEST_RUN")),
            publish_margin_seconds=float(get("PUBLISH_MARGIN_SECONDS", str(defaults.publish_margin_seconds))),
            kinesis_connect_timeout_seconds=float(
                get("KINESIS_CONNECT_TIMEOUT_SECONDS", str(defaults.kinesis_connect_timeout_seconds))
            ),
            kinesis_read_timeout_seconds=float(
                get("KINESIS_READ_TIMEOUT_SECONDS", str(defaults.kinesis_read_timeout_seconds))
            ),
            tracking_uri=get("MLFLOW_TRACKING_URI", defaults.tracking_uri),
            service_name=env.get("POWERTOOLS_SERVICE_NAME") or None,
            metrics_namespace=get("POWERTOOLS_METRICS_NAMESPACE", defaults.metrics_namespace),
            web_max_body_bytes=int(get("WEB_MAX_BODY_BYTES", str(defaults.web_max_body_bytes))),
            web_max_rides=int(get("WEB_MAX_RIDES", str(defaults.web_max_rides))),
            web_max_reported_errors=int(get("WEB_MAX_REPORTED_ERRORS", str(defaults.web_max_reported_errors))),
            web_body_timeout=float(get("WEB_BODY_TIMEOUT", str(defaults.web_body_timeout))),
            web_workers=int(env["WEB_CONCURRENCY"]) if env.get("WEB_CONCURRENCY") else None,
            batch_input_template=get("BATCH_INPUT_TEMPLATE", defaults.batch_input_template),
            batch_output_template=get("BATCH_OUTPUT_TEMPLATE", defaults.batch_output_template),
            batch_chunk_rows=int(get("BATCH_CHUNK_ROWS", str(defaults.batch_chunk_rows))),
        )
