"""HTTP adapter: ``POST /predict`` and ``GET /health`` over the models (duration and cost).

A Flask app, served by ``gunicorn model_service.web:app`` with gunicorn's
gevent worker (settings in ``gunicorn.conf.py``). A body is one ride
(``{"PULocationID", "DOLocationID", "trip_distance"}``, optionally with
``ride_id``), the course's event shape (``{"ride": {...}, "ride_id": ...}``),
or a JSON list of either, predicted in one vectorised call per model. Each
ride's answer holds every model's prediction under its target's name
(``{"duration": 12.3, "cost": 14.5, "ride_id": 256}``), and the answer the
models' versions (``"model_versions": {"duration": "1", "cost": "1"}``).

A request goes read -> parse and validate -> predict -> encode, and each step
is bounded, so no body, however hostile, costs more than a small, fast answer:

- read: at most ``WEB_MAX_BODY_BYTES``, counted as the body arrives, since a
  chunked body has no Content-Length to check first (413); a body that has not
  arrived whole ``WEB_BODY_TIMEOUT`` seconds after the request's headers, or
  is cut short, is a 400;
- parse: by the parser that reads Kinesis records (``schema.validate_json``),
  which refuses what it refuses there: text that is not UTF-8, lone
  surrogates, nesting deeper than its recursion limit (400, never a
  RecursionError's 500); a list of more than ``WEB_MAX_RIDES`` rides is
  refused (413) before any is validated;
- validate: all the rides in one pydantic call (``schema.validate_body_rides``),
  into the schema's own shapes, which names every bad field of every bad ride
  with the ride's index; the answer lists the first ``WEB_MAX_REPORTED_ERRORS``
  errors, each reason cut short, then the total;
- encode: pydantic-core's serializer, a few times faster than ``json.dumps``.

A list is all or nothing: if any ride is invalid the answer is 400 naming the
bad rides' indexes and fields, and nothing is predicted, because a client that
gets a partial answer has to match it back to its rides anyway. Every error is
a JSON body ``{"error": ..., "errors"?: [...], "error_count"?: N}``, never a
traceback.
"""

from __future__ import annotations

import logging
import sys
from contextlib import AbstractContextManager, nullcontext, suppress
from typing import IO, Any

from flask import Flask, Response, request
from pydantic import TypeAdapter
from pydantic_core import to_json
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wrappers import Response as WerkzeugResponse

from model_service.config import Settings
from model_service.errors import BadRequestBody, FieldError, InvalidJson, InvalidRides, NonFinitePrediction, RideError
from model_service.schema import Ride, validate_body_rides, validate_json
from model_service.service import RideModels

logger = logging.getLogger(__name__)

JSON_BODY: TypeAdapter[Any] = TypeAdapter(Any)
"""Any JSON value: the body's shape (a ride or a list) is the web's to read, each ride's validity the schema's."""

MAX_REASON_CHARS = 200
"""A reason quotes the bad value (``... (got '...')``); past this many characters it is cut."""

READ_CHUNK_BYTES = 64 * 1024
"""A chunked body is read in pieces of at most this size: a read of n bytes may allocate n bytes before it reads."""


def _parse(body: bytes) -> Any:
    """JSON text -> Python values, refused for the reasons a Kinesis record's payload is."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestBody(f"body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return validate_json(JSON_BODY, text)
    except InvalidJson as exc:
        raise BadRequestBody(f"body is not valid JSON: {exc}") from None


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS] + "..."


def _refusal(invalid: InvalidRides, many: bool, ride_count: int, max_errors: int) -> BadRequestBody:
    """The 400 for rides the schema refused: the first ``max_errors`` errors, each reason cut short, and the total.

    A list's errors keep their ride's index; a single ride's are its own fields.
    """
    errors: list[RideError] = [
        {"index": e["index"], "field": e["field"], "reason": _short(e["reason"])} for e in invalid.errors
    ]
    if not many:
        fields: list[FieldError] = [{"field": e["field"], "reason": e["reason"]} for e in errors]
        summary = "; ".join(f"{e['field']}: {e['reason']}" for e in fields[:max_errors])
        return BadRequestBody(f"invalid ride: {summary}", fields[:max_errors], len(fields))
    first = errors[0]
    message = (
        f"invalid rides: {invalid.invalid_count} of {ride_count} rides, {len(errors)} errors; "
        f"the first: [{first['index']}].{first['field']}: {first['reason']}"
    )
    return BadRequestBody(message, errors[:max_errors], len(errors))


# --- HTTP ---------------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return Response(to_json(body), status=status, mimetype="application/json")


BODY_NOT_RECEIVED = "the request body was not received in full"


def _read_body(limit: int, timeout: float) -> bytes:
    """The request body, or 413 as soon as it is known to be longer than ``limit`` bytes.

    A Content-Length over the limit is refused before reading, and a body of
    that length is read in one call. A chunked body has none, and werkzeug's
    own limit cuts it silently at the limit, so it is read up to one byte past
    the limit: that byte tells a body of exactly ``limit`` bytes from a longer
    one. The whole body must arrive within ``timeout`` seconds of the start of
    the read, or the request is a 400, as is a body cut short or whose client
    leaves; gunicorn then closes the connection, whose rest it cannot read.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge(f"body larger than {limit} bytes")
    # The client's socket, which gunicorn's workers put in the environ: its timeout bounds each read.
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        previous = sock.gettimeout()
        sock.settimeout(timeout)
    try:
        with _whole_read_within(timeout):
            body = _read(request.stream, length, limit)
    except (OSError, ClientDisconnected):  # a timeout, a reset, a chunked body cut short; werkzeug's own word for them
        raise BadRequestBody(BODY_NOT_RECEIVED) from None
    finally:
        if sock is not None:
            with suppress(OSError):  # the client may have closed it
                sock.settimeout(previous)
    if length is not None and len(body) < length:
        raise BadRequestBody(BODY_NOT_RECEIVED)
    if len(body) > limit:
        raise RequestEntityTooLarge(f"body larger than {limit} bytes")
    return body


def _whole_read_within(seconds: float) -> AbstractContextManager[object]:
    """A wall-clock bound on the whole read, under gunicorn's gevent workers (gunicorn.conf.py).

    The socket's timeout bounds each read of it, which a client trickling a
    byte now and then always beats; gevent's Timeout interrupts the read
    itself. Without gevent loaded (Flask's test client, whose body is already
    in memory), there is nothing to wait for.
    """
    if "gevent" not in sys.modules:
        return nullcontext()
    import gevent  # type: ignore[import-untyped]

    return gevent.Timeout(seconds, TimeoutError("the request body did not arrive in time"))


def _read(stream: IO[bytes], length: int | None, limit: int) -> bytes:
    """``length`` bytes in one read, or without a length, up to ``limit + 1`` bytes in pieces."""
    if length is not None:
        return stream.read(length)
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(READ_CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def create_app(models: RideModels, settings: Settings) -> Flask:
    """The app over loaded models; ``app_from_env`` is gunicorn's, tests pass their own."""
    app = Flask(__name__, static_folder=None)  # a JSON API: no /static route to match or serve
    versions = models.versions

    def answer(body: bytes) -> dict[str, Any]:
        """The answer to a body, or the error that refuses it."""
        parsed = _parse(body)
        many = isinstance(parsed, list)
        if many and len(parsed) > settings.web_max_rides:
            raise RequestEntityTooLarge(f"at most {settings.web_max_rides} rides per request, got {len(parsed)}")
        if not many and not isinstance(parsed, dict):
            raise BadRequestBody(f"body must be a ride object or a list of rides, not {to_json(parsed).decode()[:40]}")
        items = parsed if many else [parsed]
        try:
            validated = validate_body_rides(items)
        except InvalidRides as invalid:
            raise _refusal(invalid, many, len(items), settings.web_max_reported_errors) from None
        # Both shapes hold ride_id at the top; an event holds its ride under "ride", a bare ride is its own.
        rides: list[Ride] = [item.get("ride", item) for item in validated]  # type: ignore[misc]
        values = models.predict(rides)
        names = list(values)
        rows = zip(*values.values(), strict=True)
        predictions: list[dict[str, Any]] = [dict(zip(names, row, strict=True)) for row in rows]
        for prediction, item in zip(predictions, validated, strict=True):
            if "ride_id" in item:
                prediction["ride_id"] = item["ride_id"]
        if many:
            return {"predictions": predictions, "model_versions": versions}
        return {**predictions[0], "model_versions": versions}

    @app.post("/predict")
    def predict() -> Response:
        if not request.is_json:
            raise UnsupportedMediaType(f"send Content-Type: application/json, not {request.mimetype or 'nothing'!r}")
        return _json(answer(_read_body(settings.web_max_body_bytes, settings.web_body_timeout)))

    @app.get("/health")
    def health() -> Response:
        # The versions, not MODEL_URIS: where the models are stored is the operator's business, not a client's.
        return _json({"status": "ok", "model_loaded": True, "model_versions": versions})

    @app.errorhandler(BadRequestBody)
    def bad_request(exc: BadRequestBody) -> Response:
        body: dict[str, Any] = {"error": str(exc)}
        if exc.error_count:
            body["errors"] = exc.errors
            body["error_count"] = exc.error_count
        return _json(body, 400)

    @app.errorhandler(NonFinitePrediction)
    def unusable_prediction(exc: NonFinitePrediction) -> Response:
        # The model's fault, not the client's: a server error, and the operator's to see in the log.
        logger.error("refused to answer: %s", exc)
        return _json({"error": str(exc)}, 500)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> WerkzeugResponse:
        # Keeps the exception's status and headers (405's Allow), with a JSON body.
        response = exc.get_response()
        response.set_data(to_json({"error": exc.description or exc.name}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> Response:
        logger.exception("unexpected error serving %s %s", request.method, request.path)
        return _json({"error": "internal server error"}, 500)

    return app


app: Flask
"""Declared, not assigned: the first ``model_service.web.app`` goes through ``__getattr__`` below."""


def app_from_env() -> Flask:
    """The app gunicorn serves: settings from the environment, the models they name loaded once."""
    settings = Settings.from_env()
    models = RideModels.from_settings(settings)
    for service in models.services:
        logger.info(
            "model loaded",
            extra={"target": service.target.name, "model_uri": service.model_uri, "model_version": service.version},
        )
    return create_app(models, settings)


def __getattr__(name: str) -> Flask:
    """``model_service.web:app``, built on first access so importing this module never loads a model."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global app
    app = app_from_env()
    return app
