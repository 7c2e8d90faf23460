"""Score a range of past months, here or on the deployed scoring function, and say how each went.

Each month is scored by ``monthly.score_month``, the code the scheduled
function runs, so a backfilled month is the same file the schedule would have
written. Months whose output exists are skipped unless forced. A month that
fails does not stop the others: it is listed with its reason, and the command
exits 1.

Here, ``parallel`` months are scored at once in worker processes (scoring is
CPU work), each loading the models once. With a function name, each month is one
synchronous invocation of the deployed function, ``parallel`` at a time, so a
backfill of years runs on Lambda's scale-out while the concurrency stays
bounded; boto3's standard retry mode backs off when Lambda throttles.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from model_service.batch.monthly import INPUT_TEMPLATE_HINT, Month, MonthResult, score_month
from model_service.config import Settings
from model_service.errors import ServiceError

LAMBDA_MAX_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class MonthOutcome:
    month: Month
    status: str
    """scored, skipped (its output existed) or failed."""
    rows: int | None = None
    unpredicted: int | None = None
    seconds: float = 0.0
    error: str | None = None

    @classmethod
    def from_result(cls, result: MonthResult) -> MonthOutcome:
        report = result.report
        return cls(result.month, result.status, report.rows if report else None, report.unpredicted if report else None)


OnDone = Callable[[MonthOutcome], None]


def backfill_here(
    months: list[Month],
    taxi_type: str,
    settings: Settings,
    *,
    parallel: int = 1,
    force: bool = False,
    on_done: OnDone | None = None,
) -> list[MonthOutcome]:
    """Score the months on this machine, ``parallel`` at a time; outcomes in month order."""
    job = _LocalJob(taxi_type, settings, skip_existing=not force)
    if parallel == 1:
        _LocalJob.load_models(settings)
        return _collect((job(m) for m in months), on_done)
    workers = min(parallel, len(months))
    context = multiprocessing.get_context("spawn")  # never fork a process that may hold threads
    load = _LocalJob.load_models_in_worker
    with ProcessPoolExecutor(workers, mp_context=context, initializer=load, initargs=(settings,)) as pool:
        return _collect(_as_completed(pool, job, months), on_done)


def backfill_on_lambda(
    months: list[Month],
    taxi_type: str,
    function_name: str,
    *,
    parallel: int = 4,
    force: bool = False,
    on_done: OnDone | None = None,
    client: Any = None,
) -> list[MonthOutcome]:
    """Invoke the scoring function once per month, ``parallel`` invocations at a time; outcomes in month order."""
    job = _LambdaJob(client or lambda_client(), function_name, taxi_type, skip_existing=not force)
    with ThreadPoolExecutor(min(parallel, len(months))) as pool:
        return _collect(_as_completed(pool, job, months), on_done)


def lambda_client() -> Any:
    """A Lambda client that waits as long as the longest function run, and backs off when throttled."""
    import boto3
    from botocore.config import Config

    config = Config(
        read_timeout=LAMBDA_MAX_TIMEOUT_SECONDS + 60,
        connect_timeout=10,
        retries={"mode": "standard", "total_max_attempts": 5},
    )
    return boto3.client("lambda", config=config)


def table(outcomes: list[MonthOutcome], wall_seconds: float) -> str:
    """The closing table: one line a month, then the totals."""
    lines = [f"{'month':<8} {'status':<8} {'rows':>12} {'unscored':>10} {'seconds':>8}  error"]
    for o in outcomes:
        rows = "" if o.rows is None else f"{o.rows:,}"
        unscored = "" if o.unpredicted is None else f"{o.unpredicted:,}"
        line = f"{o.month!s:<8} {o.status:<8} {rows:>12} {unscored:>10} {o.seconds:>8.1f}  {o.error or ''}"
        lines.append(line.rstrip())
    counts = {s: sum(o.status == s for o in outcomes) for s in ("scored", "skipped", "failed")}
    total_rows = sum(o.rows or 0 for o in outcomes)
    total_unscored = sum(o.unpredicted or 0 for o in outcomes)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    months = f"{len(outcomes)} months"
    lines.append(f"{'total':<8} {months:<8} {total_rows:>12,} {total_unscored:>10,} {wall_seconds:>8.1f}  {summary}")
    return "\n".join(lines)


class _LocalJob:
    """Scores one month in this process or a worker; the models are loaded once per process."""

    models: Any = None
    load_error: ServiceError | None = None

    def __init__(self, taxi_type: str, settings: Settings, *, skip_existing: bool) -> None:
        self.taxi_type = taxi_type
        self.settings = settings
        self.skip_existing = skip_existing

    @classmethod
    def load_models(cls, settings: Settings) -> None:
        from model_service.service import RideModels

        cls.models = RideModels.from_settings(settings)

    @classmethod
    def load_models_in_worker(cls, settings: Settings) -> None:
        """A worker keeps the error, so every month it is given fails with it instead of a broken pool."""
        try:
            cls.load_models(settings)
        except ServiceError as exc:
            cls.load_error = exc

    def __call__(self, month: Month) -> MonthOutcome:
        return _timed(month, self._score)

    def _score(self, month: Month) -> MonthOutcome:
        if self.load_error is not None:
            raise self.load_error
        result = score_month(
            self.models,
            self.taxi_type,
            month,
            self.settings,
            skip_existing=self.skip_existing,
            missing_hint=INPUT_TEMPLATE_HINT,
        )
        return MonthOutcome.from_result(result)


class _LambdaJob:
    """Scores one month with one synchronous invocation of the deployed scoring function."""

    def __init__(self, client: Any, function_name: str, taxi_type: str, *, skip_existing: bool) -> None:
        self.client = client
        self.function_name = function_name
        self.taxi_type = taxi_type
        self.skip_existing = skip_existing

    def __call__(self, month: Month) -> MonthOutcome:
        return _timed(month, self._invoke)

    def _invoke(self, month: Month) -> MonthOutcome:
        event = {"taxi_type": self.taxi_type, "month": str(month), "skip_existing": self.skip_existing}
        response = self.client.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        answer = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            error = answer.get("errorMessage", answer) if isinstance(answer, dict) else answer
            return MonthOutcome(month, "failed", error=str(error))
        return MonthOutcome(month, answer["status"], answer["rows"], answer["unpredicted"])


def _timed(month: Month, score: Callable[[Month], MonthOutcome]) -> MonthOutcome:
    """``score(month)`` with the seconds it took; any error becomes a failed outcome, so the other months go on.

    The input's faults (ServiceError) read as their message; anything else (an S3
    or Lambda outage, a bug) also names its type.
    """
    start = time.perf_counter()
    try:
        outcome = score(month)
    except ServiceError as exc:
        outcome = MonthOutcome(month, "failed", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one month's failure must not abort the backfill; it is reported
        outcome = MonthOutcome(month, "failed", error=f"{type(exc).__name__}: {exc}")
    return dataclasses.replace(outcome, seconds=time.perf_counter() - start)


def _as_completed(pool: Executor, job: Callable[[Month], MonthOutcome], months: list[Month]) -> Iterator[MonthOutcome]:
    futures: list[Future[MonthOutcome]] = [pool.submit(job, m) for m in months]
    for future in as_completed(futures):
        yield future.result()


def _collect(outcomes: Iterable[MonthOutcome], on_done: OnDone | None) -> list[MonthOutcome]:
    done = []
    for outcome in outcomes:
        done.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return sorted(done, key=lambda o: o.month)
