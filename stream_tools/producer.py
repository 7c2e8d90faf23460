"""Send ride events to the input stream the way a ride-hailing backend would: paced, with retries.

What ``python -m stream_tools produce`` runs, and what the demo and the
end-to-end benchmark drive the deployed stack with. Rides come from a TLC
parquet file (real column names, ids cleaned as for training) or from
generated trips; a chosen fraction is corrupted in one of several ways, so the
dead-letter path is exercised alongside the prediction path. Records go out
through the functions' own ``KinesisPublisher``: entries Kinesis throttles are
sent again until a deadline, and only the ones that never made it count as
failed. Entries sent again are counted by why (throttled, unreachable, or
Kinesis' error code); a chunk no call of which was answered at all ends the
run with ``KinesisUnreachable``, instead of counting every record left as failed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_service.errors import InvalidSetting, ServiceError
from model_service.kinesis.publish import (
    MAX_RECORDS_PER_CALL,
    SYSTEM_CLOCK,
    THROTTLED,
    UNREACHABLE,
    Clock,
    Deadline,
    Publisher,
    Unreachable,
)
from model_service.model.features import FEATURE_COLUMNS
from model_service.trips import clean_ids, ride_id_prefix

if TYPE_CHECKING:
    import pandas as pd

CALLS_PER_SECOND = 10
"""At a set rate, records go out in about this many PutRecords calls a second: smooth, yet batched."""

RETRY_SECONDS = 30.0
"""How long the records of one PutRecords call may be sent again before they count as failed."""


def ride_event(ride_id: Any, pu: Any, do: Any, distance: Any) -> dict[str, Any]:
    """The input record's shape; any value goes, so that tests and malformed records are built the same way."""
    return {"ride": {"PULocationID": pu, "DOLocationID": do, "trip_distance": distance}, "ride_id": ride_id}


def _without(event: dict[str, Any], name: str) -> dict[str, Any]:
    ride = {k: v for k, v in event["ride"].items() if k != name}
    return {**event, "ride": ride}


def _with(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**event, "ride": {**event["ride"], **changes}}


MALFORMED: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "not JSON": lambda e: repr(e).encode(),
    "not UTF-8": lambda e: b"\xff\xfe" + json.dumps(e).encode(),
    "missing trip_distance": lambda e: json.dumps(_without(e, "trip_distance")).encode(),
    "missing ride_id": lambda e: json.dumps({"ride": e["ride"]}).encode(),
    "negative distance": lambda e: json.dumps(_with(e, trip_distance=-abs(e["ride"]["trip_distance"]) - 1)).encode(),
    "unknown zone": lambda e: json.dumps(_with(e, PULocationID=999)).encode(),
    "distance as text": lambda e: json.dumps(_with(e, trip_distance=str(e["ride"]["trip_distance"]))).encode(),
}
"""Ways a record goes wrong in the wild; each must end up as a dead letter, never as a prediction."""


@dataclass(frozen=True, slots=True)
class RideRecord:
    """One record to send: its payload, and how it was corrupted (None for a valid ride)."""

    ride_id: int | str
    data: bytes
    malformed: str | None = None

    @property
    def partition_key(self) -> str:
        """The ride_id, as the backend keys rides (so one ride's records stay in order on one shard)."""
        return str(self.ride_id)

    def payload(self) -> bytes:
        return self.data


def rides_from_trips(trips: pd.DataFrame, id_prefix: str = "") -> Iterator[dict[str, Any]]:
    """Ride events of a TLC frame; the ride_id is the row number, behind ``id_prefix`` if one is given.

    Rows without zone ids are dropped as training drops them; every other row
    is sent as it is, so a real file's odometer glitches reach the dead letters.
    """
    trips = clean_ids(trips[list(FEATURE_COLUMNS)]).dropna(subset=["trip_distance"])
    columns = (trips.index.tolist(), *(trips[c].tolist() for c in FEATURE_COLUMNS))
    for row, pu, do, distance in zip(*columns, strict=True):
        yield ride_event(f"{id_prefix}{row}" if id_prefix else row, pu, do, distance)


def month_prefix(path: str | Path) -> str:
    """``2021/01_`` for a TLC file named ``..._2021-01.parquet``, as the course's batch job ids rides."""
    match = re.search(r"(\d{4})-(\d{2})\.parquet$", str(path))
    return ride_id_prefix(int(match[1]), int(match[2])) if match else ""


def rides_from_parquet(path: str | Path) -> Iterator[dict[str, Any]]:
    import pandas as pd

    return rides_from_trips(pd.read_parquet(path, columns=list(FEATURE_COLUMNS)), month_prefix(path))


def with_malformed(events: Iterable[dict[str, Any]], fraction: float) -> Iterator[RideRecord]:
    """Encode events, corrupting an evenly spread ``fraction`` of them, cycling through every kind.

    Deterministic, so a run with N records holds round(N * fraction) malformed
    ones and a demo's summary can say exactly how many dead letters to expect.
    """
    if not 0 <= fraction <= 1:
        raise InvalidSetting(f"the malformed fraction must be between 0 and 1, not {fraction}")
    kinds = list(MALFORMED)
    corrupted = 0
    for i, event in enumerate(events):
        if int((i + 1) * fraction) > corrupted:
            kind = kinds[corrupted % len(kinds)]
            corrupted += 1
            yield RideRecord(event["ride_id"], MALFORMED[kind](event), kind)
        else:
            yield RideRecord(event["ride_id"], json.dumps(event).encode())


@dataclass
class ProduceReport:
    """Running totals, passed to the progress callback after every PutRecords chunk."""

    sent: int = 0
    """Records on the stream."""
    failed: int = 0
    """Records still not on the stream after every retry."""
    retried: int = 0
    """Entries sent again after a transient failure."""
    retry_reasons: Counter[str] = field(default_factory=Counter)
    """``retried`` by why: ``throttled``, ``unreachable``, or the error code Kinesis gave."""
    malformed: Counter[str] = field(default_factory=Counter)
    """Malformed records on the stream, by kind."""
    seconds: float = 0.0

    @property
    def rides_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def retry_reasons_text(self) -> str:
        """``throttled: 10, unreachable: 2``: why entries were sent again, the usual reasons first, then codes."""
        usual = [reason for reason in (THROTTLED, UNREACHABLE) if self.retry_reasons[reason]]
        others = sorted(reason for reason, n in self.retry_reasons.items() if n and reason not in usual)
        return ", ".join(f"{reason}: {self.retry_reasons[reason]}" for reason in usual + others)

    def resent(self) -> str:
        """``0``, or ``12 (throttled: 10, unreachable: 2)``: the entries sent again, and why."""
        return f"{self.retried} ({self.retry_reasons_text()})" if self.retried else "0"


class KinesisUnreachable(ServiceError, ConnectionError):
    """No call of a chunk got an answer, until its retries ran out: the endpoint is down or unreachable.

    ``report`` holds what was sent before (the chunk counts as failed).
    """

    def __init__(self, where: Unreachable, report: ProduceReport) -> None:
        self.where = where
        self.report = report
        super().__init__(f"cannot reach Kinesis at {where.endpoint} ({where.reason})")


def chunk_size(rate: float | None) -> int:
    if rate is None:
        return MAX_RECORDS_PER_CALL
    return max(1, min(MAX_RECORDS_PER_CALL, round(rate / CALLS_PER_SECOND)))


def produce(
    publisher: Publisher,
    records: Iterable[RideRecord],
    *,
    rate: float | None = None,
    retry_seconds: float = RETRY_SECONDS,
    on_chunk: Callable[[ProduceReport, list[RideRecord]], None] = lambda report, chunk: None,
    stop: Callable[[], bool] = lambda: False,
    clock: Clock = SYSTEM_CLOCK,
) -> ProduceReport:
    """Put ``records`` at ``rate`` records/s (as fast as possible if None) until done or ``stop()``.

    Pacing is a schedule, not a sleep per call: a chunk whose first record is
    the n-th leaves no earlier than ``start + n / rate``, so slow calls are
    caught up on instead of lowering the rate. ``on_chunk`` gets the running
    totals and the records of the chunk just put.

    Raises KinesisUnreachable when no call of a chunk was answered, however
    often it was sent again until ``retry_seconds`` were up.
    """
    if rate is not None and rate <= 0:
        raise InvalidSetting(f"the rate must be positive, not {rate}")
    report = ProduceReport()
    started = clock.monotonic()
    position = 0
    pending = iter(records)
    while not stop() and (chunk := list(islice(pending, chunk_size(rate)))):
        if rate is not None:
            clock.sleep(max(0.0, started + position / rate - clock.monotonic()))
        result = publisher.publish(chunk, Deadline.after(retry_seconds, clock))
        lost = {id(r) for r in result.failed} | {id(r) for r, _ in result.rejected}
        put = [r for r in chunk if id(r) not in lost]
        report.sent += len(put)
        report.failed += len(lost)
        report.retried += result.retried
        report.retry_reasons.update(result.retry_reasons)
        report.malformed.update(r.malformed for r in put if r.malformed)
        position += len(chunk)
        report.seconds = clock.monotonic() - started
        if result.unreachable is not None:
            raise KinesisUnreachable(result.unreachable, report)
        on_chunk(report, put)
    return report
