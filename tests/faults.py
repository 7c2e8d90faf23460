"""Kinesis failing the way it does, injected into a real boto3 client through botocore's event hooks.

A handler on ``before-call.kinesis.PutRecords`` sees each PutRecords call the
client makes and may answer in Kinesis' place: a call-level error, entries
refused with their own ErrorCode (the others are put for real through a
client without the hook), or a response that leaves entries out. Calls no
rule answers go to Kinesis (moto) untouched. Nothing of the project is
patched: the client is the one its publisher made.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

THROTTLED = "ProvisionedThroughputExceededException"


@dataclass
class PutRecordsCall:
    stream: str
    data: list[bytes]
    partition_keys: list[str]


@dataclass
class CallError:
    """The whole call fails with this error code."""

    code: str
    message: str = "injected"


@dataclass
class EntryErrors:
    """Each entry's ErrorCode, None for an entry that is put for real."""

    codes: list[str | None]
    failed_record_count: int | None = None
    """What the response claims; the true count unless given (LocalStack's fault injection always says 1)."""


@dataclass
class ShortResponse:
    """A successful response that answers for only the first ``entries`` entries."""

    entries: int


Answer = CallError | EntryErrors | ShortResponse
Rule = Callable[[PutRecordsCall], Answer | None]


@dataclass
class KinesisFaults:
    """The hook on one client; the first rule that answers a call decides it."""

    client: Any
    rules: list[Rule] = field(default_factory=list)
    on_call: Callable[[PutRecordsCall], None] = lambda call: None
    """Called first for every call: to count, or to let simulated time pass."""
    calls: list[PutRecordsCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._kinesis = boto3.client("kinesis", region_name=self.client.meta.region_name)
        self.client.meta.events.register("before-call.kinesis.PutRecords", self._before_call)

    def _before_call(self, params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        body = json.loads(params["body"])
        entries = body["Records"]
        call = PutRecordsCall(
            body["StreamName"], [base64.b64decode(e["Data"]) for e in entries], [e["PartitionKey"] for e in entries]
        )
        self.calls.append(call)
        self.on_call(call)
        for rule in self.rules:
            if (answer := rule(call)) is not None:
                return self._respond(call, answer)
        return None

    def _respond(self, call: PutRecordsCall, answer: Answer) -> tuple[AWSResponse, dict[str, Any]]:
        if isinstance(answer, CallError):
            error = {"Error": {"Code": answer.code, "Message": answer.message}}
            return AWSResponse("", 400, {}, None), {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        if isinstance(answer, ShortResponse):
            put = self._put(call, range(answer.entries))
            return AWSResponse("", 200, {}, None), {"FailedRecordCount": 0, "Records": put}
        passing = [i for i, code in enumerate(answer.codes) if code is None]
        put = iter(self._put(call, passing))
        records = [
            next(put) if code is None else {"ErrorCode": code, "ErrorMessage": "injected"} for code in answer.codes
        ]
        failed = len(answer.codes) - len(passing)
        count = failed if answer.failed_record_count is None else answer.failed_record_count
        return AWSResponse("", 200, {}, None), {"FailedRecordCount": count, "Records": records}

    def _put(self, call: PutRecordsCall, indexes: Any) -> list[dict[str, Any]]:
        entries = [{"Data": call.data[i], "PartitionKey": call.partition_keys[i]} for i in indexes]
        return self._kinesis.put_records(StreamName=call.stream, Records=entries)["Records"] if entries else []


def failing_entries(
    fail: Callable[[bytes, int], bool],
    code: str = THROTTLED,
    *,
    stream: str | None = None,
    localstack_count: bool = False,
) -> Rule:
    """Entries for which ``fail(data, attempt)`` holds get ``code``; ``attempt`` counts from 1 per distinct payload."""
    attempts: Counter[bytes] = Counter()

    def rule(call: PutRecordsCall) -> Answer | None:
        if stream is not None and call.stream != stream:
            return None
        codes: list[str | None] = []
        for data in call.data:
            attempts[data] += 1
            codes.append(code if fail(data, attempts[data]) else None)
        if not any(codes):
            return None
        return EntryErrors(codes, failed_record_count=1 if localstack_count else None)

    return rule


def failing_calls(
    code: str, *, stream: str | None = None, when: Callable[[PutRecordsCall], bool] = lambda call: True
) -> Rule:
    """Calls (to ``stream``, if given) for which ``when(call)`` holds fail with ``code``."""

    def rule(call: PutRecordsCall) -> Answer | None:
        return CallError(code) if (stream is None or call.stream == stream) and when(call) else None

    return rule
