"""What a model predicts, carried in the model itself, so that one prediction function serves any of them.

Training writes a ``Target`` into the MLflow model's metadata (``MLmodel``,
``metadata.ride_target``); the loader reads it back. Everything that differs
between a duration and a cost model follows from it: the event's ``model``
name and prediction field, the key of the web's answer, batch scoring's
columns, the range a sane prediction falls in. A model without one (a course
``model.bin``, a model logged before targets existed) predicts duration, as
the course's always did.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from model_service.errors import InvalidSetting

METADATA_KEY = "ride_target"
"""The key of an MLflow model's ``metadata`` that holds its Target."""

NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""A target's name fills event fields, column names and event ids: lower-case letters, digits and _."""


@dataclass(frozen=True)
class Target:
    """One quantity a model predicts for a ride."""

    name: str
    """``duration``, ``cost``: the web answer's key, batch columns' stem (``predicted_cost``)."""
    unit: str
    """For people: ``minutes``, ``USD``."""
    event_model: str
    """The ``model`` field of its prediction events: ``ride_duration_prediction_model``."""
    event_field: str
    """Its field in the events' ``prediction``: ``ride_duration``."""
    low: float
    high: float
    """A sane prediction for one ride lies in [low, high]; a model that answers otherwise is refused or fenced."""
    actual: str
    """The TLC column batch scoring compares it with (``fare_amount``), or ``duration``, computed from the times."""

    def __post_init__(self) -> None:
        for field in ("name", "event_field"):
            if not NAME.fullmatch(getattr(self, field)):
                raise InvalidSetting(f"a target's {field} must be lower-case letters, digits or _, not {self!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise InvalidSetting(f"a target's range must be finite and low < high, not [{self.low}, {self.high}]")

    def as_metadata(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_metadata(cls, metadata: Any) -> Target:
        """The target an MLmodel's metadata names; DURATION when it names none."""
        if not isinstance(metadata, Mapping) or METADATA_KEY not in metadata:
            return DURATION
        fields = metadata[METADATA_KEY]
        try:
            return cls(**{name: fields[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise InvalidSetting(f"the model's metadata.{METADATA_KEY} is not a target: {exc}") from None


DURATION = Target(
    name="duration",
    unit="minutes",
    event_model="ride_duration_prediction_model",
    event_field="ride_duration",
    low=0.0,
    high=24 * 60.0,
    actual="duration",
)
"""The course's model: minutes from pickup to dropoff."""

COST = Target(
    name="cost",
    unit="USD",
    event_model="ride_cost_prediction_model",
    event_field="ride_cost",
    low=0.0,
    high=10_000.0,
    actual="fare_amount",
)
"""The metered fare, TLC ``fare_amount``: time and distance only, without tips, tolls, taxes or surcharges."""
