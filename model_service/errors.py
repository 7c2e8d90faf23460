"""Every error the service raises on purpose, under one base class.

An adapter catches ``ServiceError`` (or one of its kinds) and turns it into its
own answer: a dead letter on Kinesis, a 400 on the web, exit code 2 and one
line in the command line. Anything else that escapes is a bug or an outage,
never the input's fault, and is left to fail loudly, with its traceback.

Some kinds also derive from the built-in error they refine (``ValueError``,
``FileNotFoundError``), so that code catching the built-in still works; the
base class is what the adapters catch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypedDict


class FieldError(TypedDict):
    """One problem with one field: ``{"field": "ride.trip_distance", "reason": "... (got -1)"}``."""

    field: str
    reason: str


class ServiceError(Exception):
    """Base of the service's own errors; the message always says what is wrong and where."""


class SchemaViolation(ServiceError, ValueError):
    """Decoded input (a ride, a ride event, a prediction event) that breaks its schema, one entry per field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


class RideError(FieldError):
    """A FieldError of one ride of several: ``{"index": 2, "field": "trip_distance", "reason": ...}``."""

    index: int


class InvalidRides(ServiceError, ValueError):
    """Rides of a list that break the schema: every error, each with its ride's index, in the list's order."""

    def __init__(self, errors: list[RideError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"[{e['index']}].{e['field']}: {e['reason']}" for e in errors))

    @property
    def invalid_count(self) -> int:
        """How many rides have at least one error."""
        return len({e["index"] for e in self.errors})


class InvalidJson(ServiceError, ValueError):
    """Text that is not JSON at all; the message is the parser's, with its position."""


Stage = Literal["decode", "validate", "predict", "publish"]
"""Where a record was refused: its bytes (decode), its content (validate), the model's answer (predict), or Kinesis."""


class RejectedRecord(ServiceError, ValueError):
    """A record that can never become an output event; retrying it would only block its shard."""

    def __init__(self, stage: Stage, reason: str, errors: list[FieldError] | None = None) -> None:
        self.stage: Stage = stage
        self.reason = reason
        self.errors: list[FieldError] = errors or []
        super().__init__(f"{stage}: {reason}")


class StreamUnavailable(ServiceError, RuntimeError):
    """A stream that cannot be written to (or read) for a reason no record causes: missing, access denied, KMS key.

    Writing, it fails the invocation, so Lambda keeps the batch and retries it
    until the environment is fixed (and the Errors alarm fires); dead-lettering
    valid records because of it would lose them. ``action`` says which it was.
    """

    def __init__(self, stream_name: str, code: str, message: str, action: str = "write to") -> None:
        self.stream_name = stream_name
        self.code = code
        super().__init__(f"cannot {action} Kinesis stream {stream_name}: {code}: {message}")


class InvalidSetting(ServiceError, ValueError):
    """A setting or argument whose value cannot work; the message names it and says why."""


class InvalidMonth(ServiceError, ValueError):
    """A month, a range of months or a schedule's time that does not name a month to score."""


class ModelLoadError(ServiceError, RuntimeError):
    """The model named by MODEL_URI cannot be served; the message says why and what to do."""


class UnsafeModel(ModelLoadError):
    """A model refused unread: pickle without MODEL_ALLOW_PICKLE, untrusted skops types, files outside it."""


class UnusableModel(ModelLoadError):
    """A model that loaded but is not a ride-duration model: it cannot predict a ride, or predicts nonsense."""


class PromotionRefused(ServiceError, ValueError):
    """An alias move that cannot be made: no challenger to promote, no earlier champion to roll back to."""


class ModelUploadFailed(ServiceError, RuntimeError):
    """A model that could not be copied where the functions read it: no bucket, no access, no credentials."""


class StackUpdateFailed(ServiceError, RuntimeError):
    """A deployment's CloudFormation update that did not complete; the message carries the stack's reasons."""


class NonFinitePrediction(ServiceError, ArithmeticError):
    """A model answered NaN or infinity for a ride: no event, answer or file may carry it as a number."""

    def __init__(self, target: str, value: float, index: int) -> None:
        self.target, self.value, self.index = target, value, index
        super().__init__(f"the {target} model predicted {value} for ride {index}, which is not a number to answer with")


class InvalidWeightTable(ServiceError, ValueError):
    """The file is not a weight table this code wrote: wrong arrays, shapes, types or values."""


class NotARideModel(ServiceError, ValueError):
    """The object is not a DictVectorizer followed by an estimator that predicts."""


class BadRequestBody(ServiceError, ValueError):
    """A web request body that cannot be predicted; ``errors`` says which field of which ride and why.

    ``errors`` may hold only the first few of ``error_count`` errors, so the answer stays small.
    """

    def __init__(
        self, message: str, errors: Sequence[Mapping[str, object]] = (), error_count: int | None = None
    ) -> None:
        super().__init__(message)
        self.errors = list(errors)
        self.error_count = len(self.errors) if error_count is None else error_count


class BadInputFile(ServiceError, ValueError):
    """A trips file that cannot be scored as it is: unreadable, or a column the ride schema would not accept.

    The message names the file, the column where one is at fault, and what is wrong.
    """

    def __init__(self, path: str, reason: str, column: str | None = None) -> None:
        self.path = path
        self.column = column
        self.reason = " ".join(reason.split())  # one line, whatever the reader's own message spans
        super().__init__(f"{path}: column {column}: {self.reason}" if column else f"{path}: {self.reason}")


class InputNotFound(ServiceError, FileNotFoundError):
    """The input file or S3 object does not exist: a month not published yet, or a wrong path template."""


class UnsafeOutput(ServiceError, ValueError):
    """An output location that scoring must not write: the input itself, or a directory."""
