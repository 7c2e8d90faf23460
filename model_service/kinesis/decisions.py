"""The decision function's steps: prediction events of any model in, one decision event per prediction out.

A moderation-style step reads the one predictions stream that every model
consumer writes to, and decides each event on its own, by the rule for the
model that made it: ``long_ride`` for a duration above a threshold,
``costly_ride`` for a cost above one. An event of a model it has no rule for
is decided ``no_rule`` and counted, never dead-lettered: a new consumer must
not poison the decision. (Deciding on a ride's duration and cost together
would need a store to join them; see the README.)

The decision's event_id derives from the prediction's, so every delivery of a
prediction gives the same decision event.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_service.config import Settings
from model_service.errors import FieldError, RejectedRecord, SchemaViolation
from model_service.kinesis.decode import decode_as
from model_service.kinesis.events import DecisionEvent
from model_service.kinesis.processor import Transformed
from model_service.kinesis.records import OutboundRecord, SourceRecord
from model_service.model.target import COST, DURATION, Target
from model_service.schema import FINITE_NUMBER, PREDICTION_EVENT, PredictionEvent, validate

NO_RULE = "no_rule"
NORMAL = "normal"


@dataclass(frozen=True)
class Rule:
    """Flag a model's predictions above a threshold."""

    target: Target
    flag: str
    """The decision for a prediction above the threshold: ``long_ride``."""
    threshold: float
    threshold_key: str
    """The decision event's field for the threshold: ``threshold_minutes``."""

    @property
    def value_key(self) -> str:
        """The decision event's field for the prediction: ``predicted_duration``."""
        return f"predicted_{self.target.name}"


def rules(settings: Settings) -> dict[str, Rule]:
    """The rules by the ``model`` name of the events they decide."""
    return {
        rule.target.event_model: rule
        for rule in (
            Rule(DURATION, "long_ride", settings.long_ride_threshold_minutes, "threshold_minutes"),
            Rule(COST, "costly_ride", settings.costly_ride_threshold_usd, "threshold_usd"),
        )
    }


class DecodePrediction:
    """A prediction event, its value checked where a rule will read it (a finite number), or RejectedRecord."""

    def __init__(self, rules: dict[str, Rule]) -> None:
        self.rules = rules

    def __call__(self, data_b64: str) -> PredictionEvent:
        event = decode_as(PREDICTION_EVENT, data_b64)
        rule = self.rules.get(event["model"])
        if rule is not None:
            field = rule.target.event_field
            try:
                validate(FINITE_NUMBER, event["prediction"].get(field))
            except SchemaViolation as exc:
                reason = exc.errors[0]["reason"] if field in event["prediction"] else "Field required"
                error: FieldError = {"field": f"prediction.{field}", "reason": reason}
                raise RejectedRecord("validate", f"{error['field']}: {reason}", [error]) from None
        return event


class DecideRides:
    """Decides every accepted prediction of a batch by its model's rule."""

    def __init__(self, rules: dict[str, Rule], consumer: str) -> None:
        self.rules = rules
        self.consumer = consumer

    def __call__(self, accepted: list[tuple[SourceRecord, PredictionEvent]]) -> Transformed[DecisionEvent]:
        return Transformed(
            [
                OutboundRecord(self.decision_event(source, event), str(event["prediction"]["ride_id"]), source)
                for source, event in accepted
            ]
        )

    def decision_event(self, source: SourceRecord, event: PredictionEvent) -> DecisionEvent:
        prediction_id = event.get("event_id") or source.record_id
        decision: DecisionEvent = {
            "event_id": f"{prediction_id}/{self.consumer}",
            "prediction_event_id": prediction_id,
            "ride_id": event["prediction"]["ride_id"],
            "decision": NO_RULE,
            "model": {"name": event["model"], "version": event["version"]},
        }
        rule = self.rules.get(event["model"])
        if rule is not None:
            value = float(event["prediction"][rule.target.event_field])  # type: ignore[literal-required]
            decision["decision"] = rule.flag if value > rule.threshold else NORMAL
            decision[rule.value_key] = value  # type: ignore[literal-required]
            decision[rule.threshold_key] = rule.threshold  # type: ignore[literal-required]
        return decision


def decision_label(event: DecisionEvent) -> str:
    """What a decision is counted as in the function's metrics: its outcome."""
    return event["decision"]
