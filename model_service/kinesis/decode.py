"""Turn one Kinesis record's payload into a validated event, or into the reason it is not one.

Decoding never raises anything but RejectedRecord, so one bad record can be set
aside (dead-lettered) while the rest of its batch goes on.
"""

from __future__ import annotations

import binascii

from pydantic import TypeAdapter

from model_service.errors import InvalidJson, RejectedRecord, SchemaViolation
from model_service.schema import RIDE_EVENT, RideEvent, Shape, validate_json


def decode_text(data_b64: str) -> str:
    """base64 -> UTF-8 text, each failure named."""
    try:
        # base64.b64decode(validate=True) checks the alphabet with a regular expression
        # first; binascii's strict mode refuses the same input in C, in a third less time.
        raw = binascii.a2b_base64(data_b64, strict_mode=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise RejectedRecord("decode", f"data is not valid base64 ({exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedRecord("decode", f"data is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def decode_as(schema: TypeAdapter[Shape], data_b64: str) -> Shape:
    """A record's payload parsed and validated as ``schema``, or RejectedRecord saying which field and why."""
    text = decode_text(data_b64)
    try:
        return validate_json(schema, text)
    except InvalidJson as exc:
        raise RejectedRecord("decode", f"data is not valid JSON ({exc})") from None
    except SchemaViolation as exc:
        raise RejectedRecord("validate", str(exc), exc.errors) from None


def decode_ride_event(data_b64: str) -> RideEvent:
    return decode_as(RIDE_EVENT, data_b64)
