"""Every setting the service reads from the environment, in one place, each checked once at start-up.

Defaults are for local use (models trained with ``python -m model_service train``
into the local MLflow store); a deployment overrides them through the template.

A setting that cannot work stops start-up with one line naming the variable,
its value and what it may be, instead of failing later on every batch or,
worse, letting every batch succeed without publishing anything: a publish
margin that leaves no time for one PutRecords call would report every batch's
first record unpublished, and Lambda would retry it until the records expire
with no error raised and no alarm.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from model_service.errors import InvalidSetting

DEFAULT_MODEL_URIS = ("models:/ride-duration@champion", "models:/ride-cost@champion")
"""The models that serve, duration and cost: the registry's champions in the local MLflow store (training makes a
model's first version its champion; ``promote`` and ``rollback`` move it)."""

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

MIB = 1024 * 1024

DEFAULT_CHUNK_ROWS = 100_000
"""Rows batch scoring predicts per vectorised call; bounds its memory whatever the file's size."""

MAX_VERSION_CHARS = 256
"""A model version is the ``version`` of every event, which the event schema holds to this length."""

CONSUMER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
"""A consumer's name ends its event ids and names it in dead letters."""

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def _shown(number: float) -> str:
    return f"{number:,.0f}" if float(number).is_integer() else f"{number:g}"


@dataclass(frozen=True)
class _Range:
    """The values a numeric setting may take: finite, from ``low`` to ``high``; above ``low`` if ``open_low``."""

    variable: str
    low: float
    high: float
    integer: bool = False
    open_low: bool = False

    def allowed(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        low = f"above {_shown(self.low)}" if self.open_low else f"from {_shown(self.low)}"
        return f"{kind} {low} to {_shown(self.high)}"

    def holds(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        return math.isfinite(value) and above and value <= self.high


RANGES = {
    "long_ride_threshold_minutes": _Range("LONG_RIDE_THRESHOLD_MINUTES", 0, 24 * 60),
    "costly_ride_threshold_usd": _Range("COSTLY_RIDE_THRESHOLD_USD", 0, 10_000),
    "publish_margin_seconds": _Range("PUBLISH_MARGIN_SECONDS", 0, 60),
    "kinesis_connect_timeout_seconds": _Range("KINESIS_CONNECT_TIMEOUT_SECONDS", 0, 60, open_low=True),
    "kinesis_read_timeout_seconds": _Range("KINESIS_READ_TIMEOUT_SECONDS", 0, 120, open_low=True),
    "function_timeout_seconds": _Range("FUNCTION_TIMEOUT_SECONDS", 1, 900),
    "web_max_body_bytes": _Range("WEB_MAX_BODY_BYTES", 1, 100 * MIB, integer=True),
    "web_max_rides": _Range("WEB_MAX_RIDES", 1, 1_000_000, integer=True),
    "web_max_reported_errors": _Range("WEB_MAX_REPORTED_ERRORS", 1, 1000, integer=True),
    "web_body_timeout": _Range("WEB_BODY_TIMEOUT", 0, 3600, open_low=True),
    "web_workers": _Range("WEB_CONCURRENCY", 1, 256, integer=True),
    "web_worker_connections": _Range("WEB_WORKER_CONNECTIONS", 1, 100_000, integer=True),
    "batch_chunk_rows": _Range("BATCH_CHUNK_ROWS", 1, 10_000_000, integer=True),
}
"""Every numeric setting, by field: its variable and what it may be."""

TEXTS = {
    "model_uri": "MODEL_URI",
    "input_stream_name": "INPUT_STREAM_NAME",
    "predictions_stream_name": "PREDICTIONS_STREAM_NAME",
    "shadow_predictions_stream_name": "SHADOW_PREDICTIONS_STREAM_NAME",
    "dead_letter_stream_name": "DEAD_LETTER_STREAM_NAME",
    "decisions_stream_name": "DECISIONS_STREAM_NAME",
    "tracking_uri": "MLFLOW_TRACKING_URI",
    "metrics_namespace": "POWERTOOLS_METRICS_NAMESPACE",
    "batch_input_template": "BATCH_INPUT_TEMPLATE",
    "batch_output_template": "BATCH_OUTPUT_TEMPLATE",
}
"""Text settings with a default, by field: their variable (empty means the default)."""

OPTIONAL_TEXTS = {
    "model_version": "MODEL_VERSION",
    "consumer_name": "CONSUMER_NAME",
    "service_name": "POWERTOOLS_SERVICE_NAME",
}
"""Text settings without one, by field: unset or empty is None."""

FLAGS = {"model_allow_pickle": "MODEL_ALLOW_PICKLE", "test_run": "TEST_RUN"}
LISTS = {"model_uris": "MODEL_URIS", "model_versions": "MODEL_VERSIONS"}


def given(variable: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value when the environment sets it (not empty), else None, whatever its default.

    For a command that must not fall back to a default: replay serves the
    model the function runs, never ``models:/ride-duration@champion`` by chance.
    ``environ`` is the process environment unless given (a function's own, say).
    """
    env = os.environ if environ is None else environ
    return env.get(variable) or None


def _flag(variable: str, value: str) -> bool:
    word = value.strip().lower()
    if word not in _TRUE | _FALSE:
        raise InvalidSetting(f"{variable}={value!r} is not allowed: give true or false")
    return word in _TRUE


def _items(value: str) -> tuple[str, ...]:
    """A comma-separated list, blanks around items dropped."""
    return tuple(item.strip() for item in value.split(","))


def _number(rule: _Range, value: str) -> float:
    """The variable's number, refused with its text as given (not as parsed) if it is not one the rule allows."""
    try:
        number = int(value) if rule.integer else float(value)
    except ValueError:
        number = None
    if number is None or not rule.holds(number):
        raise InvalidSetting(f"{rule.variable}={value!r} is not allowed: give {rule.allowed()}")
    return number


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
    """Let a pickle load (a course model.bin, an MLflow model saved with pickle); pickles run code when read."""
    input_stream_name: str = "ride_events"
    """Where ride events arrive; ``produce`` sends to it (the template names it InputStreamName)."""
    predictions_stream_name: str = "ride_predictions"
    shadow_predictions_stream_name: str = "ride_shadow_predictions"
    """Where challengers' shadow consumers publish (the template's ShadowPredictionsStream); ``compare`` reads it."""
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
    function_timeout_seconds: float | None = None
    """The Lambda function's timeout, where the template passes it: the margin and one call must fit in it."""
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
    """Seconds a whole request body may take to arrive before the request is refused (400) and its connection freed."""
    web_workers: int | None = None
    """Gunicorn worker processes; None means one per CPU this process may run on."""
    web_worker_connections: int = 1000
    """Connections one gunicorn worker holds at once; past them, new ones wait in the listen queue."""
    batch_input_template: str = "data/{taxi_type}_tripdata_{year:04d}-{month:02d}.parquet"
    batch_output_template: str = "output/{taxi_type}/{year:04d}-{month:02d}.parquet"
    batch_chunk_rows: int = DEFAULT_CHUNK_ROWS

    def __post_init__(self) -> None:
        for field, rule in RANGES.items():
            value = getattr(self, field)
            if value is not None and not rule.holds(value):
                raise InvalidSetting(f"{rule.variable}={value!r} is not allowed: give {rule.allowed()}")
        if self.model_version is not None and len(self.model_version) > MAX_VERSION_CHARS:
            raise InvalidSetting(
                f"MODEL_VERSION has {len(self.model_version)} characters; a version is at most {MAX_VERSION_CHARS}"
            )
        if self.consumer_name is not None and not CONSUMER_NAME.fullmatch(self.consumer_name):
            raise InvalidSetting(
                f"CONSUMER_NAME={self.consumer_name!r} is not allowed: give 1 to 32 of a-z 0-9 _ -, from a letter"
            )
        if self.function_timeout_seconds is not None:
            needed = self.publish_margin_seconds + self.call_seconds
            if needed >= self.function_timeout_seconds:
                raise InvalidSetting(
                    f"PUBLISH_MARGIN_SECONDS + KINESIS_CONNECT_TIMEOUT_SECONDS + KINESIS_READ_TIMEOUT_SECONDS"
                    f" = {needed:g} s leave no time for one PutRecords call in FUNCTION_TIMEOUT_SECONDS"
                    f"={self.function_timeout_seconds:g}: lower them, or raise the function's timeout"
                )

    @property
    def call_seconds(self) -> float:
        """The longest one PutRecords call may take."""
        return self.kinesis_connect_timeout_seconds + self.kinesis_read_timeout_seconds

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check the settings; unset or empty variables keep their local default.

        ``environ`` is the process environment unless given: a deployed function's
        environment variables give the settings that function runs with.
        Raises InvalidSetting, naming the variable, its value and what it may be.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field, variable in TEXTS.items():
            if env.get(variable):
                values[field] = env[variable]
        for field, variable in OPTIONAL_TEXTS.items():
            values[field] = env.get(variable) or None
        for field, variable in FLAGS.items():
            values[field] = _flag(variable, env.get(variable, ""))
        for field, variable in LISTS.items():
            if env.get(variable):
                values[field] = _items(env[variable])
        for field, rule in RANGES.items():
            if env.get(rule.variable):
                values[field] = _number(rule, env[rule.variable])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})  # type: ignore[arg-type]
