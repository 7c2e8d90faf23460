"""HTTP adapter: ``POST /predict`` and ``GET /health`` over the prediction service.

Served by ``gunicorn --bind=0.0.0.0:9696 model_service.web:app`` (settings in
``gunicorn.conf.py``). A body is one ride (``{"PULocationID", "DOLocationID",
"trip_distance"}``, optionally with ``ride_id``), the course's event shape
(``{"ride": {...}, "ride_id": ...}``), or a JSON list of either, predicted in one
vectorised call. A list is all or nothing: if any ride is invalid the answer is
400 naming each bad ride's index and field, and nothing is predicted, because a
client that gets a partial answer has to match it back to its rides anyway.
Every error is a JSON body ``{"error": ..., "errors"?: [...]}`` and never a
traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wrappers import Response as WerkzeugResponse

from model_service.config import Settings
from model_service.errors import BadRequestBody, SchemaViolation
from model_service.schema import Ride, validate_ride, validate_ride_event
from model_service.service import PredictionService

logger = logging.getLogger(__name__)


def _parse_ride(data: Any) -> tuple[Ride, Any]:
    """(ride, ride_id or None) from a bare ride or a course-style event."""
    if isinstance(data, dict) and "ride" in data:
        event = validate_ride_event(data)
        return event["ride"], event["ride_id"]
    if isinstance(data, dict) and "ride_id" in data:
        # Validate the id by the event schema's rules, reporting fields as the client wrote them.
        try:
            event = validate_ride_event({"ride": data, "ride_id": data["ride_id"]})
        except SchemaViolation as exc:
            raise SchemaViolation([{**e, "field": e["field"].removeprefix("ride.")} for e in exc.errors]) from None
        return event["ride"], event["ride_id"]
    return validate_ride(data), None


def _parse_rides(body: Any) -> list[tuple[Ride, Any]]:
    parsed: list[tuple[Ride, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(body):
        try:
            parsed.append(_parse_ride(item))
        except SchemaViolation as exc:
            errors.extend({"index": index, **e} for e in exc.errors)
    if errors:
        summary = "; ".join(f"[{e['index']}].{e['field']}: {e['reason']}" for e in errors)
        raise BadRequestBody(f"invalid rides: {summary}", errors)
    return parsed


def _read_json() -> Any:
    if not request.is_json:
        raise UnsupportedMediaType(f"send Content-Type: application/json, not {request.mimetype or 'nothing'!r}")
    # get_data enforces MAX_CONTENT_LENGTH (413) even without a Content-Length header.
    try:
        return json.loads(request.get_data(cache=False))
    except ValueError as exc:
        raise BadRequestBody(f"body is not valid JSON: {exc}") from None


def _prediction(duration: float, ride_id: Any) -> dict[str, Any]:
    return {"duration": duration} if ride_id is None else {"duration": duration, "ride_id": ride_id}


def create_app(service: PredictionService | None = None, settings: Settings | None = None) -> Flask:
    """The app; tests pass their own service, gunicorn gets one loaded from MODEL_URI."""
    settings = settings or Settings.from_env()
    if service is None:
        service = PredictionService.load(settings.model_uri, settings.model_version)
        logger.info("model loaded", extra={"model_uri": service.model_uri, "model_version": service.version})
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.web_max_body_bytes

    @app.post("/predict")
    def predict() -> Response:
        body = _read_json()
        if isinstance(body, list):
            rides = _parse_rides(body)
            durations = service.predict([ride for ride, _ in rides])
            predictions = [_prediction(d, rid) for d, (_, rid) in zip(durations, rides, strict=True)]
            return jsonify(predictions=predictions, model_version=service.version)
        if not isinstance(body, dict):
            raise BadRequestBody(f"body must be a ride object or a list of rides, not {json.dumps(body)[:40]}")
        try:
            ride, ride_id = _parse_ride(body)
        except SchemaViolation as exc:
            raise BadRequestBody(f"invalid ride: {exc}", exc.errors) from None
        (duration,) = service.predict([ride])
        return jsonify(**_prediction(duration, ride_id), model_version=service.version)

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok", model_loaded=True, model_version=service.version, model_uri=service.model_uri)

    @app.errorhandler(BadRequestBody)
    def bad_request(exc: BadRequestBody) -> tuple[Response, int]:
        body: dict[str, Any] = {"error": str(exc)}
        if exc.errors:
            body["errors"] = exc.errors
        return jsonify(body), 400

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> tuple[Response, int]:
        return jsonify(error=f"body larger than {settings.web_max_body_bytes} bytes"), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> WerkzeugResponse:
        # Keeps the exception's status and headers (405's Allow), with a JSON body.
        response = exc.get_response()
        response.set_data(json.dumps({"error": exc.description or exc.name}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> tuple[Response, int]:
        logger.exception("unexpected error serving %s %s", request.method, request.path)
        return jsonify(error="internal server error"), 500

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
