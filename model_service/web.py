"""HTTP adapter: ``POST /predict`` and ``GET /health`` over the prediction service.

Served by ``gunicorn model_service.web:app`` (settings in ``gunicorn.conf.py``).
A body is one ride (``{"PULocationID", "DOLocationID", "trip_distance"}``,
optionally with ``ride_id``), the course's event shape (``{"ride": {...},
"ride_id": ...}``), or a JSON list of either, predicted in one vectorised call.

A request goes read -> parse -> validate -> predict -> encode, and each step is
bounded, so no body, however hostile, costs more than a small, fast answer:

- read: at most ``WEB_MAX_BODY_BYTES``, counted as the body arrives, since a
  chunked body has no Content-Length to check first (413);
- parse: by the parser that reads Kinesis records (``schema.validate_json``),
  which refuses what it refuses there: text that is not UTF-8, lone surrogates,
  nesting deeper than its recursion limit (400, never a RecursionError's 500);
- validate: every ride by the schema's own functions, at most
  ``WEB_MAX_RIDES`` rides (413), and a 400 lists the first
  ``WEB_MAX_REPORTED_ERRORS`` errors, each reason cut short, then the total;
- encode: pydantic-core's serializer, a few times faster than ``json.dumps``.

A list is all or nothing: if any ride is invalid the answer is 400 naming the
bad rides' indexes and fields, and nothing is predicted, because a client that
gets a partial answer has to match it back to its rides anyway. Every error is
a JSON body ``{"error": ..., "errors"?: [...], "error_count"?: N}``, never a
traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from pydantic import TypeAdapter
from pydantic_core import to_json
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wrappers import Response as WerkzeugResponse

from model_service.config import Settings
from model_service.errors import BadRequestBody, FieldError, InvalidJson, SchemaViolation
from model_service.schema import Ride, RideId, validate_json, validate_ride, validate_ride_event
from model_service.service import PredictionService

logger = logging.getLogger(__name__)

JSON_BODY: TypeAdapter[Any] = TypeAdapter(Any)
"""Any JSON value: the body's shape (a ride or a list) is the web's to read, each ride's validity the schema's."""

MAX_REASON_CHARS = 200
"""A reason quotes the bad value (``... (got '...')``); past this many characters it is cut."""

READ_CHUNK_BYTES = 64 * 1024
"""The body is read in pieces of at most this size: a read of n bytes allocates n bytes before it reads."""


def _json(body: Any, status: int = 200) -> Response:
    return Response(to_json(body), status=status, mimetype="application/json")


def _read_body(limit: int) -> bytes:
    """The request body, or 413 as soon as it is known to be longer than ``limit`` bytes.

    A Content-Length over the limit is refused before reading. A chunked body
    has none, and werkzeug's own limit cuts it silently at the limit, so it is
    read up to one byte past the limit: that byte tells a body of exactly
    ``limit`` bytes from a longer one.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge(f"body larger than {limit} bytes")
    wanted = limit + 1 if length is None else length
    chunks: list[bytes] = []
    size = 0
    while size < wanted:
        chunk = request.stream.read(min(READ_CHUNK_BYTES, wanted - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise RequestEntityTooLarge(f"body larger than {limit} bytes")
    return b"".join(chunks)


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


def _ride(item: Any) -> tuple[Ride, RideId | None]:
    """(ride, ride_id or None) from a bare ride or a course-style event; SchemaViolation if invalid."""
    if isinstance(item, dict) and "ride" in item:
        event = validate_ride_event(item)
        return event["ride"], event["ride_id"]
    if isinstance(item, dict) and "ride_id" in item:
        # The id is judged by the event schema's rules; fields are named as the client wrote them.
        try:
            event = validate_ride_event({"ride": item, "ride_id": item["ride_id"]})
        except SchemaViolation as exc:
            raise SchemaViolation([{**e, "field": e["field"].removeprefix("ride.")} for e in exc.errors]) from None
        return event["ride"], event["ride_id"]
    return validate_ride(item), None


def _short(error: FieldError) -> FieldError:
    reason = error["reason"]
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + "..."
    return {"field": error["field"], "reason": reason}


def _one_ride(body: Any, max_errors: int) -> tuple[Ride, RideId | None]:
    if not isinstance(body, dict):
        raise BadRequestBody(f"body must be a ride object or a list of rides, not {to_json(body).decode()[:40]}")
    try:
        return _ride(body)
    except SchemaViolation as exc:
        errors = [_short(e) for e in exc.errors]
        summary = "; ".join(f"{e['field']}: {e['reason']}" for e in errors[:max_errors])
        raise BadRequestBody(f"invalid ride: {summary}", errors[:max_errors], len(errors)) from None


def _rides(items: list[Any], max_rides: int, max_errors: int) -> list[tuple[Ride, RideId | None]]:
    """Every ride of a list, or one 400 that lists the first ``max_errors`` errors and counts them all."""
    if len(items) > max_rides:
        raise RequestEntityTooLarge(f"at most {max_rides} rides per request, got {len(items)}")
    rides: list[tuple[Ride, RideId | None]] = []
    listed: list[dict[str, Any]] = []
    first: dict[str, Any] = {}
    invalid = error_count = 0
    for index, item in enumerate(items):
        try:
            rides.append(_ride(item))
        except SchemaViolation as exc:
            errors = [{"index": index, **_short(e)} for e in exc.errors]
            first = first or errors[0]
            invalid += 1
            error_count += len(errors)
            listed.extend(errors[: max(max_errors - len(listed), 0)])
    if invalid:
        message = (
            f"invalid rides: {invalid} of {len(items)} rides, {error_count} errors; "
            f"the first: [{first['index']}].{first['field']}: {first['reason']}"
        )
        raise BadRequestBody(message, listed, error_count)
    return rides


def _prediction(duration: float, ride_id: RideId | None) -> dict[str, Any]:
    return {"duration": duration} if ride_id is None else {"duration": duration, "ride_id": ride_id}


def create_app(service: PredictionService | None = None, settings: Settings | None = None) -> Flask:
    """The app; tests pass their own service, gunicorn gets one loaded from MODEL_URI."""
    settings = settings or Settings.from_env()
    if service is None:
        service = PredictionService.load(settings.model_uri, settings.model_version)
        logger.info("model loaded", extra={"model_uri": service.model_uri, "model_version": service.version})
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> Response:
        if not request.is_json:
            raise UnsupportedMediaType(f"send Content-Type: application/json, not {request.mimetype or 'nothing'!r}")
        body = _parse(_read_body(settings.web_max_body_bytes))
        if isinstance(body, list):
            rides = _rides(body, settings.web_max_rides, settings.web_max_reported_errors)
            durations = service.predict([ride for ride, _ in rides])
            predictions = [_prediction(d, ride_id) for d, (_, ride_id) in zip(durations, rides, strict=True)]
            return _json({"predictions": predictions, "model_version": service.version})
        ride, ride_id = _one_ride(body, settings.web_max_reported_errors)
        (duration,) = service.predict([ride])
        return _json({**_prediction(duration, ride_id), "model_version": service.version})

    @app.get("/health")
    def health() -> Response:
        # The version, not MODEL_URI: where the model is stored is the operator's business, not a client's.
        return _json({"status": "ok", "model_loaded": True, "model_version": service.version})

    @app.errorhandler(BadRequestBody)
    def bad_request(exc: BadRequestBody) -> Response:
        body: dict[str, Any] = {"error": str(exc)}
        if exc.error_count:
            body["errors"] = exc.errors
            body["error_count"] = exc.error_count
        return _json(body, 400)

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


def __getattr__(name: str) -> Flask:
    """``model_service.web:app``, built on first access so importing this module never loads a model."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global app
    app = create_app()
    return app
