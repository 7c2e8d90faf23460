"""One month of one taxi type: where its trips and predictions live, and scoring it.

The schedule, the scoring function, ``score --year --month`` and the backfill
all name a month the same way (``2021-02``) and fill the same path templates
(BATCH_INPUT_TEMPLATE, BATCH_OUTPUT_TEMPLATE), so a month scored by any of them
lands in the same place.

Run here (``score --year --month``, ``backfill``), a month whose input is
missing says where it was looked for and which setting put it there:
``no trips for green 2021-03 at data/green_tripdata_2021-03.parquet (set
BATCH_INPUT_TEMPLATE to where your monthly files are)``. The scoring function,
whose template the stack sets, says ``<path>: no such object``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from model_service.batch import storage
from model_service.batch.score import ScoreReport, score_file
from model_service.config import Settings
from model_service.errors import InputNotFound, InvalidMonth, InvalidSetting
from model_service.trips import ride_id_prefix

if TYPE_CHECKING:
    from model_service.service import RideModels

INPUT_TEMPLATE_HINT = "set BATCH_INPUT_TEMPLATE to where your monthly files are"
"""What to do about a month missing where the input template put it, when the template is the user's to set."""

TAXI_TYPE = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""The TLC's names (yellow, green, fhv, fhvhv); never a path separator, since it fills file paths."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise InvalidMonth(f"month must be 1 to 12, not {self.month}")
        if not 1 <= self.year <= 9999:
            raise InvalidMonth(f"year must be 1 to 9999, not {self.year}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """``2021-02`` -> Month(2021, 2)."""
        match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
        if not match:
            raise InvalidMonth(f"{text!r} is not a month; write it as YYYY-MM, e.g. 2021-02")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)


def month_range(first: Month, last: Month) -> list[Month]:
    """Every month from ``first`` to ``last``, both included."""
    if last < first:
        raise InvalidMonth(f"the range ends ({last}) before it starts ({first})")
    months = [first]
    while months[-1] < last:
        months.append(months[-1].next())
    return months


def month_before(scheduled_time: str, time_zone: str = "UTC") -> Month:
    """The month before the one a schedule fired in, in the schedule's own time zone.

    EventBridge Scheduler gives the time in UTC (``2021-03-02T08:00:00Z``); a
    schedule set for 00:30 on the 1st in Tokyo fires on the last day of the
    previous month in UTC, so the month is taken where the schedule lives.
    """
    zone = zone_info(time_zone)
    try:
        fired = datetime.fromisoformat(scheduled_time)
    except ValueError:
        raise InvalidMonth(f"scheduled_time {scheduled_time!r} is not an ISO 8601 time") from None
    if fired.tzinfo is None:
        raise InvalidMonth(f"scheduled_time {scheduled_time!r} has no UTC offset")
    local = fired.astimezone(zone)
    return Month(local.year, local.month).previous()


def zone_info(name: str) -> ZoneInfo:
    """An IANA time zone by name, or InvalidMonth saying it is not one (the month depends on it)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidMonth(f"{name!r} is not an IANA time zone such as America/New_York") from None


def month_paths(input_template: str, output_template: str, *, taxi_type: str, month: Month) -> tuple[str, str]:
    """Fill the templates' ``{taxi_type}``, ``{year}`` and ``{month}``."""
    if not TAXI_TYPE.fullmatch(taxi_type):
        raise InvalidSetting(f"taxi type {taxi_type!r} must be lower-case letters, digits or _, such as green")
    fields = {"taxi_type": taxi_type, "year": month.year, "month": month.month}
    try:
        return input_template.format(**fields), output_template.format(**fields)
    except (KeyError, IndexError) as exc:
        raise InvalidSetting(f"path templates may use only {{taxi_type}}, {{year}} and {{month}}: {exc}") from None


def month_not_found(taxi_type: str, month: Month, input_path: str, hint: str = INPUT_TEMPLATE_HINT) -> InputNotFound:
    """The error for a month whose input is not at ``input_path``: the month, the path, and ``hint``."""
    return InputNotFound(f"no trips for {taxi_type} {month} at {input_path} ({hint})")


@dataclass(frozen=True)
class MonthResult:
    taxi_type: str
    month: Month
    input: str
    output: str
    report: ScoreReport | None
    """None when the month was skipped because its output already existed."""

    @property
    def status(self) -> str:
        return "skipped" if self.report is None else "scored"

    def as_dict(self, model_versions: dict[str, str]) -> dict[str, Any]:
        """What the scoring function answers and logs."""
        report = self.report
        return {
            "taxi_type": self.taxi_type,
            "month": str(self.month),
            "status": self.status,
            "input": self.input,
            "output": self.output,
            "model_versions": model_versions,
            "rows": report.rows if report else None,
            "predicted": report.predicted if report else None,
            "unpredicted": report.unpredicted if report else None,
            "seconds": round(report.seconds, 3) if report else None,
        }


def score_month(
    models: RideModels,
    taxi_type: str,
    month: Month,
    settings: Settings,
    *,
    skip_existing: bool = False,
    progress: TextIO | None = None,
    missing_hint: str | None = None,
) -> MonthResult:
    """Score one month into its output, replacing it in one step, or skip it if asked and it exists.

    A missing input raises InputNotFound: ``<path>: no such file`` (or ``object``), or, given a
    ``missing_hint``, ``month_not_found``'s message with it (INPUT_TEMPLATE_HINT where the user sets the template).
    """
    input_path, output_path = month_paths(
        settings.batch_input_template, settings.batch_output_template, taxi_type=taxi_type, month=month
    )
    if skip_existing and storage.exists(output_path):
        return MonthResult(taxi_type, month, input_path, output_path, None)
    try:
        report = score_file(
            models,
            input_path,
            output_path,
            ride_id_prefix=ride_id_prefix(month.year, month.month),
            chunk_rows=settings.batch_chunk_rows,
            progress=progress,
        )
    except InputNotFound:
        if missing_hint is None:
            raise
        raise month_not_found(taxi_type, month, input_path, missing_hint) from None
    return MonthResult(taxi_type, month, input_path, output_path, report)
