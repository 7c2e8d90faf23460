"""Put records on a Kinesis stream before a deadline, and say which could not be put and why.

A failure is one of three kinds, told apart by its error code:

- **transient** (throttling, internal errors, timeouts, a response with fewer
  entries than were sent): the entries are sent again, alone, with capped
  exponential backoff and full jitter, until the deadline; those still
  pending then are returned as ``failed``, for Lambda to retry.
- **the record's own** (a ValidationException for the whole call): the call is
  split until the offending entries are alone; they are returned as
  ``rejected``, to be dead-lettered, and the rest go out.
- **the environment's** (stream missing, access denied, KMS key unusable,
  credentials missing or expired, or a refusal that every record of a call
  meets alone): ``StreamUnavailable`` is raised, since no record is to blame.

Each entry's ErrorCode decides, never FailedRecordCount alone (LocalStack's
fault injection reports a count that does not match the entries). boto3 makes
one attempt per call, since its own retries know no deadline; a call is
given up on after connect + read timeout of wall-clock time (boto3's own
timeouts bound each socket operation, not the call), and no call starts
unless that bound fits before the deadline.

Every entry sent again is counted with why (``PublishResult.retry_reasons``):
``throttled``, ``unreachable`` (no connection, or no answer in time), or the
error code Kinesis gave. A publish in which no call was answered at all says
where it called and why it got nothing (``PublishResult.unreachable``): a tool
can then say the endpoint is down rather than count failed records.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from model_service.errors import InvalidSetting, StreamUnavailable
from model_service.kinesis.records import MAX_RECORD_BYTES, record_size

if TYPE_CHECKING:
    from model_service.config import Settings

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
"""PutRecords limits; a record's size counts its data and its partition key."""

STREAM_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,128}")

ENVIRONMENT_ERRORS = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "KMSOptInRequired",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "ExpiredToken",
        "RequestExpired",
        "InvalidClientTokenId",
        "MissingAuthenticationToken",
        "IncompleteSignature",
    }
)
"""Codes no record causes and no retry within an invocation mends: missing streams, access, keys, credentials."""

CREDENTIAL_ERRORS = (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, NoRegionError)
"""botocore's own refusals to sign a call: no record causes them, and they last until the function is fixed."""

MIN_PAUSE_SECONDS = 0.001

RECORD_ERRORS = frozenset({"ValidationException", "InvalidArgumentException"})
"""Codes of a request Kinesis refuses for what it holds: some entry is at fault, and sending it again cannot help."""

THROTTLING_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "LimitExceededException",
        "KMSThrottlingException",
    }
)
"""Codes of a refusal for going too fast: entries refused so are re-sent as ``throttled``."""

THROTTLED = "throttled"
UNREACHABLE = "unreachable"
"""The two usual reasons an entry is sent again; any other reason is the error code Kinesis gave."""

logger = logging.getLogger(__name__)


class CallTimedOut(TimeoutError):
    """A PutRecords call that did not answer within its bound; caught here, as a transient failure."""


UNREACHABLE_ERRORS = (BotoConnectionError, HTTPClientError, CallTimedOut)
"""No answer from the endpoint: no connection (refused, no such host, connect timeout), or none in time."""


def connection_reason(exc: BaseException) -> str:
    """A few words on why an endpoint gave no answer: ``connection refused``, ``no answer within 7 s``, ..."""
    cause = str(getattr(exc, "kwargs", {}).get("error", ""))
    if isinstance(exc, EndpointConnectionError):
        if "refused" in cause.lower():
            return "connection refused"
        if any(words in cause for words in ("resolve", "not known", "nodename", "getaddrinfo")):
            return "its host name does not resolve"
        return "no connection"
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        kind = "connect" if isinstance(exc, ConnectTimeoutError) else "read"
        seconds = re.search(rf"{kind} timeout=([0-9.]+)", cause)
        bound = f"{float(seconds[1]):g} s" if seconds else f"the {kind} timeout"
        return f"no connection within {bound}" if kind == "connect" else f"no answer within {bound}"
    if isinstance(exc, CallTimedOut):
        return str(exc)
    if isinstance(exc, HTTPClientError):
        return "the connection was closed"
    return type(exc).__name__


def endpoint_of(client: Any) -> str:
    """Where a boto3 client calls: ``https://kinesis.<region>.amazonaws.com``, or the override."""
    return str(client.meta.endpoint_url).rstrip("/")


def retry_reason(code: str) -> str:
    """What an entry refused with ``code`` is re-sent as: ``throttled``, or the code itself."""
    return THROTTLED if code in THROTTLING_ERRORS else code


class Publishable(Protocol):
    """What a publisher can put: an event to publish, or a producer's ride record."""

    @property
    def partition_key(self) -> str: ...

    def payload(self) -> bytes: ...


R = TypeVar("R", bound=Publishable)


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


@dataclass(frozen=True)
class Deadline:
    """The moment, on ``clock``, by which publishing must be over."""

    at: float
    clock: Clock = SYSTEM_CLOCK

    @classmethod
    def after(cls, seconds: float, clock: Clock = SYSTEM_CLOCK) -> Deadline:
        return cls(clock.monotonic() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock.monotonic()


class RemainingTime(Protocol):
    """The part of Lambda's context object a deadline is taken from."""

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Unreachable:
    """No call of a publish got an answer: the endpoint called, and why nothing came back (in a few words)."""

    endpoint: str
    reason: str


@dataclass
class PublishResult(Generic[R]):
    failed: list[R] = field(default_factory=list)
    """Not on the stream when the deadline came: transient failures, worth retrying later."""
    rejected: list[tuple[R, str]] = field(default_factory=list)
    """Refused by Kinesis for what they are, with the reason; sending them again cannot help."""
    retried: int = 0
    """How many entries were sent again after a transient failure."""
    retry_reasons: Counter[str] = field(default_factory=Counter)
    """``retried`` by why: ``throttled``, ``unreachable``, or Kinesis' error code; the counts add up to it."""
    unreachable: Unreachable | None = None
    """Set when records failed and no call was answered at all: the endpoint is down or unreachable."""


class Publisher(Protocol):
    def publish(self, records: Sequence[R], deadline: Deadline) -> PublishResult[R]: ...


_Entry = tuple[R, dict[str, Any], int]
"""A record, its PutRecords request entry and its size: a plain tuple, as one is made per record."""


def entry(record: R) -> _Entry[R]:
    """The record encoded once, with what a PutRecords call needs of it."""
    data, key = record.payload(), record.partition_key
    return record, {"Data": data, "PartitionKey": key}, record_size(data, key)


@dataclass
class _Publishing(Generic[R]):
    """One publish under way: its deadline and result, and what its calls have met so far."""

    deadline: Deadline
    result: PublishResult[R]
    why: Counter[str] = field(default_factory=Counter)
    """The current attempt's entries to send again, by reason."""
    answered: bool = False
    """Some call got an answer from Kinesis (success or error)."""
    no_answer: str | None = None
    """Why the last call that got no answer got none."""


def chunks(entries: Sequence[_Entry[R]]) -> Iterator[list[_Entry[R]]]:
    """Split entries into PutRecords calls within the count and size limits, keeping order."""
    chunk: list[_Entry[R]] = []
    size = 0
    for item in entries:
        if chunk and (len(chunk) == MAX_RECORDS_PER_CALL or size + item[2] > MAX_BYTES_PER_CALL):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item[2]
    if chunk:
        yield chunk


class KinesisPublisher:
    def __init__(
        self,
        client: Any,
        stream_name: str,
        *,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        # A bad name would make every call a ValidationException, which is taken
        # for the records' fault: refuse it here, before any record is at stake.
        if not STREAM_NAME.fullmatch(stream_name):
            raise InvalidSetting(f"{stream_name!r} is not a Kinesis stream name (1 to 128 of a-z A-Z 0-9 _ . -)")
        self.client = client
        self.stream_name = stream_name
        config = client.meta.config
        self.call_seconds = float(config.connect_timeout) + float(config.read_timeout)
        """The longest one call can take: boto3 makes one attempt, bounded by its two timeouts."""
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._jitter = jitter

    def publish(self, records: Sequence[R], deadline: Deadline) -> PublishResult[R]:
        result: PublishResult[R] = PublishResult()
        pending: list[_Entry[R]] = []
        for item in map(entry, records):
            if item[2] > MAX_RECORD_BYTES:
                limit = f"over Kinesis' limit of {MAX_RECORD_BYTES}"
                result.rejected.append((item[0], f"the record takes {item[2]} bytes with its partition key, {limit}"))
            else:
                pending.append(item)
        run = _Publishing(deadline, result)
        attempt = 0
        while pending:
            if attempt:
                pause = self._backoff(attempt, deadline)
                if pause is None:
                    break
                deadline.clock.sleep(pause)
                result.retried += len(pending)
                result.retry_reasons.update(run.why)
            run.why = Counter()
            pending = self._put_all(pending, run)
            attempt += 1
        if pending:
            logger.error(
                "%d records not put on %s before the deadline, after %d attempts (a call may take %.1f s)",
                len(pending),
                self.stream_name,
                attempt,
                self.call_seconds,
            )
            result.failed.extend(item[0] for item in pending)
            if not run.answered and run.no_answer is not None:
                result.unreachable = Unreachable(endpoint_of(self.client), run.no_answer)
        return result

    def _fits(self, deadline: Deadline) -> bool:
        return deadline.remaining() >= self.call_seconds

    def _backoff(self, attempt: int, deadline: Deadline) -> float | None:
        """Full jitter on a capped exponential, cut to what the deadline leaves; None once nothing is left.

        Every pause is at least a millisecond, and after a pause cut short a
        call still fits but no further pause does: the loop ends even on a
        clock that only sleeps move.
        """
        spare = deadline.remaining() - self.call_seconds
        if spare < MIN_PAUSE_SECONDS:
            return None
        delay = self._jitter() * min(self.max_delay, self.base_delay * 2 ** min(attempt, 32))
        return min(spare, max(MIN_PAUSE_SECONDS, delay))

    def _put_all(self, pending: list[_Entry[R]], run: _Publishing[R]) -> list[_Entry[R]]:
        left: list[_Entry[R]] = []
        for chunk in chunks(pending):
            left.extend(self._put(chunk, run, whole=True) if self._fits(run.deadline) else chunk)
        return left

    def _put(self, chunk: list[_Entry[R]], run: _Publishing[R], whole: bool = False) -> list[_Entry[R]]:
        """One PutRecords call; returns the entries to send again (counted by why), records rejected ones.

        ``whole``: the chunk is a call of its own, not a half of a refused one.
        """
        try:
            response = self._call(chunk)
        except ClientError as exc:
            run.answered = True
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "Unknown"), error.get("Message", "")
            if code in ENVIRONMENT_ERRORS:
                raise StreamUnavailable(self.stream_name, code, message) from exc
            if code in RECORD_ERRORS:
                return self._narrow_refused(chunk, code, message, run, whole)
            logger.warning("PutRecords to %s failed (%s); %d entries to send again", self.stream_name, code, len(chunk))
            run.why[retry_reason(code)] += len(chunk)
            return chunk
        except ParamValidationError as exc:  # botocore's own check of the request, made before sending it
            return self._narrow(chunk, f"the request is invalid: {exc}", run)
        except CREDENTIAL_ERRORS as exc:
            raise StreamUnavailable(self.stream_name, type(exc).__name__, str(exc)) from exc
        except UNREACHABLE_ERRORS as exc:  # refused, reset, timed out: the call may not have reached Kinesis
            logger.warning("PutRecords to %s failed (%s); %d entries to send again", self.stream_name, exc, len(chunk))
            run.no_answer = connection_reason(exc)
            run.why[UNREACHABLE] += len(chunk)
            return chunk
        except BotoCoreError as exc:  # an answer botocore could not read, say
            run.answered = True
            logger.warning("PutRecords to %s failed (%s); %d entries to send again", self.stream_name, exc, len(chunk))
            run.why[type(exc).__name__] += len(chunk)
            return chunk
        run.answered = True
        answers = response.get("Records", [])
        if len(answers) != len(chunk):
            logger.warning(
                "PutRecords to %s answered for %d of %d entries; sending them all again",
                self.stream_name,
                len(answers),
                len(chunk),
            )
            run.why["incomplete answer"] += len(chunk)
            return chunk
        failed: list[_Entry[R]] = []
        for item, answer in zip(chunk, answers, strict=True):
            if code := answer.get("ErrorCode"):
                message = answer.get("ErrorMessage", "")
                if code in ENVIRONMENT_ERRORS:
                    raise StreamUnavailable(self.stream_name, code, message)
                if code in RECORD_ERRORS:
                    run.result.rejected.append((item[0], f"Kinesis refused the record: {code}: {message}"))
                else:
                    run.why[retry_reason(code)] += 1
                    failed.append(item)
        if failed:
            codes = sorted({a["ErrorCode"] for a in answers if a.get("ErrorCode")})
            logger.warning("%d of %d entries to %s failed: %s", len(failed), len(chunk), self.stream_name, codes)
        return failed

    def _call(self, chunk: list[_Entry[R]]) -> Any:
        """The PutRecords call, waited for at most ``call_seconds`` of wall-clock time.

        boto3's timeouts bound each socket operation, not the call: an endpoint
        that drips its answer a byte at a time keeps one going for as long as it
        likes. The call runs on a thread of its own, so that this one stops
        waiting in time; a call given up on may still complete, and its records
        are then sent again (at least once, under the same event_ids).
        """
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["response"] = self.client.put_records(
                    StreamName=self.stream_name, Records=[item[1] for item in chunk]
                )
            except BaseException as exc:  # noqa: BLE001 - handed over to the waiting thread, raised there
                outcome["error"] = exc

        caller = threading.Thread(target=call, name=f"put-records-{self.stream_name}", daemon=True)
        caller.start()
        caller.join(self.call_seconds)
        if caller.is_alive():
            raise CallTimedOut(f"no answer within {self.call_seconds:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    def _narrow_refused(
        self, chunk: list[_Entry[R]], code: str, message: str, run: _Publishing[R], whole: bool
    ) -> list[_Entry[R]]:
        """Narrow a call Kinesis refused for what it holds; raise unless some record of it went out.

        A refusal is a record's own only when halving finds it beside records
        that Kinesis accepts. When every record of a call is refused alone with
        the same code, no record is to blame (the stream or its settings are),
        and dead-lettering them would drop every valid ride: it is the
        environment's, and fails the invocation. A call of one record refused
        so is the environment's too: nothing tells it apart, and Lambda's
        retries end it in the on-failure queue, not in a dead letter.
        """
        reason = f"Kinesis refused the record: {code}: {message}"
        result = run.result
        before = len(result.rejected)
        left = self._narrow(chunk, reason, run)
        refused = result.rejected[before:]
        same = f"Kinesis refused the record: {code}:"
        if whole and len(refused) == len(chunk) and all(r.startswith(same) for _, r in refused):
            del result.rejected[before:]
            why = f"all {len(chunk)} records of a call were refused alone, none while another went out: {message}"
            raise StreamUnavailable(self.stream_name, code, why)
        return left

    def _narrow(self, chunk: list[_Entry[R]], reason: str, run: _Publishing[R]) -> list[_Entry[R]]:
        """Halve a refused call until the entries at fault are alone; the rest are put on the way."""
        if len(chunk) == 1:
            run.result.rejected.append((chunk[0][0], reason))
            return []
        middle = len(chunk) // 2
        left: list[_Entry[R]] = []
        for half in (chunk[:middle], chunk[middle:]):
            left.extend(self._put(half, run) if self._fits(run.deadline) else half)
        return left


class CollectingPublisher:
    """Keeps what it is given instead of putting it anywhere: TEST_RUN's publisher, and the tests'."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    def publish(self, records: Sequence[R], deadline: Deadline) -> PublishResult[R]:
        self.records.extend(records)
        return PublishResult()

    def take(self) -> list[Any]:
        """What was published since the last take."""
        taken, self.records = self.records, []
        return taken


def kinesis_client(settings: Settings, **client_options: Any) -> Any:
    """A client for publishing: one attempt per call, bounded by the connect and read timeouts.

    ``client_options`` go to ``boto3.client`` (an endpoint, credentials).
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 1},
        connect_timeout=settings.kinesis_connect_timeout_seconds,
        read_timeout=settings.kinesis_read_timeout_seconds,
    )
    return boto3.client("kinesis", config=config, **client_options)


@dataclass
class Publishers:
    """Where a function's output events and its dead letters go, and the clock their deadline runs on."""

    output: Publisher
    dead_letters: Publisher
    margin_seconds: float = 1.0
    """Kept at the end of an invocation, after the last call, to report the batch."""
    clock: Clock = SYSTEM_CLOCK
    call_seconds: float = 0.0
    """The longest one call to the streams may take (0 for publishers that call nothing)."""

    def deadline_for(self, context: RemainingTime) -> Deadline:
        """Lambda's remaining time less the margin: the invocation must answer before it times out.

        An invocation that starts with no time for one call could publish
        nothing, and would report every batch's first record unpublished, for
        ever and without an error: it fails instead, naming the settings, so
        that the Errors alarm fires.
        """
        remaining = context.get_remaining_time_in_millis() / 1000
        deadline = Deadline.after(remaining - self.margin_seconds, self.clock)
        if self.call_seconds and deadline.remaining() < self.call_seconds:
            raise InvalidSetting(
                f"the invocation starts with {remaining:.1f} s left, less than PUBLISH_MARGIN_SECONDS"
                f" ({self.margin_seconds:g} s) and one PutRecords call ({self.call_seconds:g} s:"
                f" KINESIS_CONNECT_TIMEOUT_SECONDS + KINESIS_READ_TIMEOUT_SECONDS): nothing could be published."
                f" Raise the function's timeout, or lower these settings"
            )
        return deadline

    @classmethod
    def for_streams(cls, output_stream: str, settings: Settings) -> Publishers:
        client = kinesis_client(settings)
        return cls(
            output=KinesisPublisher(client, output_stream),
            dead_letters=KinesisPublisher(client, settings.dead_letter_stream_name),
            margin_seconds=settings.publish_margin_seconds,
            call_seconds=settings.call_seconds,
        )
