"""What the scoring function is asked to do: which month of which taxi type, from its event.

EventBridge Scheduler sends the schedule's ``Input`` as the event, with
``<aws.scheduler.scheduled-time>`` replaced by the time the run was due
(``2021-03-02T08:00:00Z``); the template's schedule sends

    {"taxi_type": "green", "scheduled_time": "<aws.scheduler.scheduled-time>", "time_zone": "America/New_York"}

and the month scored is the one before the scheduled time, in the schedule's
time zone. A person or the backfill names the month instead:

    {"taxi_type": "green", "month": "2021-02", "skip_existing": true}

Unknown fields are refused, so a typo (``"monht"``) fails instead of scoring
the wrong month.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired

from pydantic import ConfigDict, Field, StrictBool, StrictStr, TypeAdapter
from typing_extensions import TypedDict

from model_service.batch.monthly import TAXI_TYPE, Month, month_before, zone_info
from model_service.errors import InvalidMonth, SchemaViolation
from model_service.schema import validate


class ScoringEvent(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    taxi_type: Annotated[StrictStr, Field(pattern=f"^{TAXI_TYPE.pattern}$")]
    month: NotRequired[Annotated[StrictStr, Field(pattern=r"^\d{4}-\d{2}$")]]
    scheduled_time: NotRequired[StrictStr]
    time_zone: NotRequired[StrictStr]
    skip_existing: NotRequired[StrictBool]


SCORING_EVENT = TypeAdapter(ScoringEvent)


@dataclass(frozen=True)
class ScoringRequest:
    taxi_type: str
    month: Month
    skip_existing: bool


def scoring_request(event: Any) -> ScoringRequest:
    """The month to score, or a SchemaViolation naming the event's field at fault and why."""
    fields = validate(SCORING_EVENT, event)
    if "month" in fields:
        with _field("month"):
            month = Month.parse(fields["month"])
    elif "scheduled_time" in fields:
        zone = fields.get("time_zone", "UTC")
        with _field("time_zone"):
            zone_info(zone)
        with _field("scheduled_time"):
            month = month_before(fields["scheduled_time"], zone)
    else:
        raise SchemaViolation([{"field": "month", "reason": "give month (YYYY-MM) or scheduled_time"}])
    return ScoringRequest(fields["taxi_type"], month, fields.get("skip_existing", False))


@contextmanager
def _field(name: str) -> Iterator[None]:
    """An InvalidMonth inside becomes a SchemaViolation of field ``name``."""
    try:
        yield
    except InvalidMonth as exc:
        raise SchemaViolation([{"field": name, "reason": str(exc)}]) from None
