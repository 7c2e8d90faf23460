"""Lambda's Kinesis event source mapping, simulated on one shard, with its settings read from the templates.

What Lambda does with a function's answer is documented, and this follows it:

- a batch of up to BatchSize records is delivered with the function's Timeout;
- a response with batchItemFailures checkpoints before the lowest reported
  sequence number and retries from it (with BisectBatchOnFunctionError, only
  the remaining records); that retry counts against MaximumRetryAttempts;
- an error or a timeout fails the batch: with BisectBatchOnFunctionError it is
  split in two and each half retried (splitting costs no retry), else retried
  whole;
- a batch whose retries are exhausted, or whose records are older than
  MaximumRecordAgeInSeconds, is given up: only its place goes to the
  on-failure destination, its records are lost to the function;
- records older than the stream's retention are gone.

Time is simulated: it passes when the function's publisher sleeps, when a
fault hook says a call took time, and between retries (a pause AWS does not
document, taken here to double from a second up to a minute). The handler is the real
module, loaded as Lambda loads it; only its clock is the simulation's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_stack.aws import TEMPLATE
from local_stack.deploy import parse_template
from stream_tools.local_invoke import LocalContext

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0
"""Lambda's pause before retrying a failed batch, doubling from one shard poll up to a minute.

AWS documents no figure and the template sets none; what matters here is
only that retries go on, as the template's settings say, while time passes.
"""


class SimulatedClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    advance = sleep


class SimulatedContext(LocalContext):
    """Lambda's context object, its remaining time on the simulated clock."""

    def __init__(self, clock: SimulatedClock, timeout_seconds: float) -> None:
        self.clock = clock
        self.ends_at = clock.now + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends_at - self.clock.now) * 1000))


def at_default(template: dict[str, Any], value: Any) -> Any:
    """``value``, or the default of the parameter it refers to (``{"Ref": name}``)."""
    return template["Parameters"][value["Ref"]].get("Default") if isinstance(value, dict) and "Ref" in value else value


@dataclass(frozen=True)
class EventSourceSettings:
    """What Lambda's retries depend on, as template.yaml deploys them."""

    batch_size: int
    maximum_retry_attempts: int
    maximum_record_age_seconds: int
    bisect_on_error: bool
    report_batch_item_failures: bool
    timeout_seconds: float
    retention_seconds: float

    @classmethod
    @functools.cache
    def from_template(cls, function: str = "DurationConsumer") -> EventSourceSettings:
        """The settings of ``function``'s Kinesis event source, the template's parameters at their defaults.

        ``function`` is a function of template.yaml (DecisionFunction) or one of
        its model consumers (DurationConsumer), whose function is in the nested
        stack and takes its settings from the parameters the consumer passes it.
        """
        template = parse_template(TEMPLATE.read_text())
        resource = template["Resources"][function]
        retention = template["Resources"]["InputStream"]["Properties"]["RetentionPeriodHours"]
        if resource["Type"] == "AWS::Serverless::Application":
            nested = parse_template((TEMPLATE.parent / resource["Properties"]["Location"]).read_text())
            passed = resource["Properties"]["Parameters"]

            def resolve(value: Any) -> Any:
                if isinstance(value, dict) and "Ref" in value and value["Ref"] in passed:
                    return at_default(template, passed[value["Ref"]])
                return at_default(nested, value)

            properties = nested["Resources"]["Function"]["Properties"]
            # The consumer's mapping is its own resource, on the function's live alias.
            (source,) = (
                r["Properties"] for r in nested["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
            )
        else:

            def resolve(value: Any) -> Any:
                return at_default(template, value)

            properties = resource["Properties"]
            (source,) = (e["Properties"] for e in properties["Events"].values() if e["Type"] == "Kinesis")
        return cls(
            batch_size=int(resolve(source["BatchSize"])),
            maximum_retry_attempts=int(resolve(source["MaximumRetryAttempts"])),
            maximum_record_age_seconds=int(resolve(source["MaximumRecordAgeInSeconds"])),
            bisect_on_error=bool(resolve(source["BisectBatchOnFunctionError"])),
            report_batch_item_failures="ReportBatchItemFailures" in source["FunctionResponseTypes"],
            timeout_seconds=float(resolve(properties["Timeout"])),
            retention_seconds=float(at_default(template, retention)) * 3600,
        )


@dataclass
class Invocation:
    seconds: float = 0.0
    response: Any = None
    error: BaseException | None = None
    """What the handler raised, or a TimeoutError when it ran past the function's timeout."""


@dataclass
class SimulatedEventSource:
    """Delivers a shard's records to ``handler`` as the event source mapping would, until all are done or gone."""

    handler: Callable[[dict[str, Any], Any], Any]
    settings: EventSourceSettings
    clock: SimulatedClock
    before_invocation: Callable[[float], None] = lambda now: None
    """Called with the time before every invocation: to change the environment as time passes."""
    invocations: list[Invocation] = field(default_factory=list)
    given_up: list[list[dict[str, Any]]] = field(default_factory=list)
    """Batches sent to the on-failure destination (their records are lost unless replayed)."""
    expired: list[dict[str, Any]] = field(default_factory=list)
    """Records gone from the stream before they were processed."""

    def run(self, records: list[dict[str, Any]]) -> None:
        self._arrived = self.clock.now
        for start in range(0, len(records), self.settings.batch_size):
            self._deliver(records[start : start + self.settings.batch_size], attempts=0)

    def _age(self) -> float:
        return self.clock.now - self._arrived

    def _deliver(self, batch: list[dict[str, Any]], attempts: int) -> None:
        limit = self.settings.maximum_retry_attempts
        while batch:
            if self._age() >= self.settings.retention_seconds:
                self.expired.extend(batch)
                return
            if 0 <= self.settings.maximum_record_age_seconds <= self._age():
                self.given_up.append(batch)
                return
            invocation = self._invoke(batch)
            if invocation.error is None:
                failures = (invocation.response or {}).get("batchItemFailures") or []
                if not failures or not self.settings.report_batch_item_failures:
                    return
                lowest = min(int(f["itemIdentifier"]) for f in failures)
                batch = [r for r in batch if int(r["kinesis"]["sequenceNumber"]) >= lowest]
            elif self.settings.bisect_on_error and len(batch) > 1:
                middle = len(batch) // 2
                self._deliver(batch[:middle], attempts)
                self._deliver(batch[middle:], attempts)
                return
            attempts += 1
            if limit != -1 and attempts > limit:
                self.given_up.append(batch)
                return
            self.clock.advance(min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1)))

    def _invoke(self, batch: list[dict[str, Any]]) -> Invocation:
        self.before_invocation(self.clock.now)
        started = self.clock.now
        context = SimulatedContext(self.clock, self.settings.timeout_seconds)
        invocation = Invocation()
        try:
            invocation.response = self.handler({"Records": batch}, context)
        except Exception as exc:  # noqa: BLE001 - any error fails the invocation, as in Lambda
            invocation.error = exc
        invocation.seconds = self.clock.now - started
        if invocation.seconds > self.settings.timeout_seconds:
            invocation.error = TimeoutError(f"Task timed out after {self.settings.timeout_seconds:.2f} seconds")
        self.invocations.append(invocation)
        return invocation
