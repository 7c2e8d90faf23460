"""The event schemas: what a valid ride (or prediction event) looks like and why a record is not one.

Every adapter (Kinesis, web, batch) validates through this module, so a ride is
judged by the same rules wherever it enters. The shapes are TypedDicts checked
by pydantic: a validated ride is a plain dict, which costs half as much per
record as a model instance on the Lambda's hot path.
"""

from __future__ import annotations

import math
import reprlib
from typing import Annotated, Any, NotRequired, TypeVar

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StrictInt,
    Tag,
    TypeAdapter,
    ValidationError,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from model_service.config import MAX_VERSION_CHARS
from model_service.errors import FieldError, InvalidJson, InvalidRides, RideError, SchemaViolation

MAX_ZONE_ID = 265
"""TLC taxi zones are numbered 1..263, plus 264 and 265 for unknown and outside NYC."""

MAX_TRIP_DISTANCE_MILES = 500.0
"""No taxi ride in NYC is longer; real files carry odometer glitches of tens of thousands."""

MAX_RIDE_ID_CHARS = 256
"""A ride_id is its prediction's partition key, and Kinesis refuses a partition key over 256 characters."""

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer every JSON consumer reads exactly (JavaScript's Number.MAX_SAFE_INTEGER)."""

MAX_EVENT_ID_CHARS = 512
"""An event_id is ``stream:shard:sequence``: at most 128 + 20 + 129 characters plus separators."""

MAX_NAME_CHARS = MAX_VERSION_CHARS
"""A model name or version in a prediction event."""

MAX_QUOTED_CHARS = 200
"""How much of a bad value an error quotes: enough to recognise it, never enough to grow a dead letter."""

IGNORE_EXTRA = ConfigDict(extra="ignore")
"""Producers may add fields; only the ones the model needs are checked and kept."""

ZoneId = Annotated[StrictInt, Field(ge=1, le=MAX_ZONE_ID)]


def partition_key_length(text: str) -> int:
    """Characters as a partition key counts them, in UTF-16 code units (an emoji counts 2).

    Kinesis documents the limit in "Unicode characters"; UTF-16 code units are
    never fewer, so a key within this count is within the limit either way.
    """
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def _ride_id(value: Any) -> int | str:
    """One clear error for a bad ride_id, rather than one per member of an int | str union."""
    if isinstance(value, str) and (stripped := value.strip()):
        if partition_key_length(stripped) > MAX_RIDE_ID_CHARS:
            raise PydanticCustomError(
                "ride_id_too_long",
                "Input should have at most {limit} characters (a Kinesis partition key), not {length}",
                {"limit": MAX_RIDE_ID_CHARS, "length": partition_key_length(stripped)},
            )
        return stripped
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_SAFE_INTEGER:
            raise PydanticCustomError(
                "ride_id_out_of_range",
                "Input should be an integer from -{limit} to {limit}, which every JSON consumer reads exactly",
                {"limit": MAX_SAFE_INTEGER},
            )
        return value
    raise PydanticCustomError("ride_id", "Input should be an integer or a non-empty string")


RideId = Annotated[int | str, PlainValidator(_ride_id)]
"""An integer JSON consumers read exactly, or a non-empty string that fits a partition key (outer blanks dropped)."""


@with_config(IGNORE_EXTRA)
class Ride(TypedDict):
    """The features of one ride, as the course's producers send them."""

    PULocationID: ZoneId
    DOLocationID: ZoneId
    trip_distance: Annotated[float, Field(strict=True, ge=0, le=MAX_TRIP_DISTANCE_MILES, allow_inf_nan=False)]


@with_config(IGNORE_EXTRA)
class RideEvent(TypedDict):
    """One input record: ``{"ride": {...}, "ride_id": ...}``."""

    ride: Ride
    ride_id: RideId


@with_config(ConfigDict(extra="allow"))
class Prediction(TypedDict):
    """``{"ride_id": 256, <the model's field>: 12.3}``: the field (``ride_duration``, ``ride_cost``) is the model's.

    Kept whatever it is named, so that a reader can judge a model it knows
    (``FiniteNumber``) and pass on one it does not.
    """

    ride_id: RideId


FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A prediction's value: a JSON number, never NaN or infinite."""


@with_config(IGNORE_EXTRA)
class PredictionEvent(TypedDict):
    """What a prediction function publishes; the decision function reads it back through this schema.

    The course's fields, plus ``event_id``; extra fields from newer producers are ignored.
    """

    model: Annotated[str, Field(max_length=MAX_NAME_CHARS)]
    version: Annotated[str, Field(max_length=MAX_NAME_CHARS)]
    prediction: Prediction
    event_id: NotRequired[Annotated[str, Field(min_length=1, max_length=MAX_EVENT_ID_CHARS)]]


class RideWithId(Ride, total=False):
    """A bare ride that carries its ``ride_id`` (the web's shape), judged by the event schema's rule for ride ids."""

    __pydantic_config__ = IGNORE_EXTRA  # type: ignore[misc]

    ride_id: RideId


def _body_shape(item: Any) -> str:
    """An object with a ``ride`` key is a ride event, anything else a bare ride."""
    return "event" if isinstance(item, dict) and "ride" in item else "ride"


BodyRide = Annotated[
    Annotated[RideWithId, Tag("ride")] | Annotated[RideEvent, Tag("event")], Discriminator(_body_shape)
]
"""One ride of a web body, in either shape; both hold ``ride_id`` at the top, an event its ride under ``ride``."""

Shape = TypeVar("Shape")

RIDE = TypeAdapter(Ride)
RIDE_EVENT = TypeAdapter(RideEvent)
PREDICTION_EVENT = TypeAdapter(PredictionEvent)
FINITE_NUMBER: TypeAdapter[float] = TypeAdapter(FiniteNumber)
BODY_RIDES: TypeAdapter[list[RideWithId | RideEvent]] = TypeAdapter(list[BodyRide])


def _quoting() -> reprlib.Repr:
    quote = reprlib.Repr()
    quote.maxstring = quote.maxother = quote.maxlong = MAX_QUOTED_CHARS
    quote.maxlevel, quote.maxdict, quote.maxlist = 2, 4, 4
    return quote


_QUOTE = _quoting()


def quoted(value: Any) -> str:
    """``repr(value)``, cut to about MAX_QUOTED_CHARS however large or deep the value is."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(str(value))
    text = _QUOTE.repr(value)
    return text if len(text) <= MAX_QUOTED_CHARS else text[: MAX_QUOTED_CHARS - 3] + "..."


def _describe(error: Any) -> FieldError:
    """pydantic's error as a FieldError; the location's parts joined with dots, ``<record>`` for the whole."""
    field = ".".join(str(part) for part in error["loc"]) or "<record>"
    reason = error["msg"]
    if error["type"] not in {"missing", "model_type", "model_attributes_type", "dict_type"}:
        reason = f"{reason} (got {quoted(error.get('input'))})"
    return {"field": field, "reason": reason}


def describe_errors(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors as ``{"field": "ride.trip_distance", "reason": "... (got -1)"}``."""
    return [_describe(e) for e in exc.errors()]


def validate(adapter: TypeAdapter[Shape], data: Any) -> Shape:
    """Validate decoded JSON against a schema; raise SchemaViolation naming each bad field."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise SchemaViolation(describe_errors(exc)) from None


def validate_json(adapter: TypeAdapter[Shape], text: str) -> Shape:
    """Parse and validate JSON text in one pass (about half the cost of ``json.loads`` then validation).

    Raises InvalidJson for text that is not JSON, SchemaViolation for JSON that breaks the schema.
    """
    try:
        return adapter.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise InvalidJson(first["msg"].removeprefix("Invalid JSON: ")) from None
        raise SchemaViolation(describe_errors(exc)) from None


def validate_body_rides(items: list[Any]) -> list[RideWithId | RideEvent]:
    """A web body's rides, either shape, in one pydantic call, or InvalidRides naming each error's ride.

    pydantic locates an error at ``(index, shape tag, field...)``: the index
    is kept, the tag dropped, so a field reads as the client wrote it
    (``ride.trip_distance`` in an event, ``trip_distance`` in a bare ride).
    """
    try:
        return BODY_RIDES.validate_python(items)
    except ValidationError as exc:
        errors: list[RideError] = []
        for error in exc.errors():
            index, _shape, *field = error["loc"]
            described = _describe({**error, "loc": tuple(field)})
            errors.append({"index": int(index), "field": described["field"], "reason": described["reason"]})
        raise InvalidRides(errors) from None


def validate_ride_event(data: Any) -> RideEvent:
    return validate(RIDE_EVENT, data)


def validate_ride(data: Any) -> Ride:
    """A bare ride object (the web service takes rides without the event wrapper)."""
    return validate(RIDE, data)
