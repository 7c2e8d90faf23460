"""A Kinesis client that fails chosen PutRecords entries, the way Kinesis does under load."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from stream_tools.tail import StreamTail

THROTTLED = "ProvisionedThroughputExceededException"


class FlakyKinesis:
    """Wraps a real (moto) client; chosen entries come back with an ErrorCode instead of being put.

    ``fail(data, attempt)`` decides per entry, ``attempt`` counting from 1 for
    each distinct payload. ``localstack_count=True`` reports FailedRecordCount=1
    whatever failed, as LocalStack's fault injection does.
    """

    def __init__(
        self,
        client: Any,
        fail: Callable[[bytes, int], bool],
        *,
        error_code: str = THROTTLED,
        localstack_count: bool = False,
    ) -> None:
        self.client = client
        self.fail = fail
        self.error_code = error_code
        self.localstack_count = localstack_count
        self.calls: list[list[bytes]] = []
        self._attempts: Counter[bytes] = Counter()

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append([entry["Data"] for entry in Records])
        failing = []
        for entry in Records:
            self._attempts[entry["Data"]] += 1
            failing.append(self.fail(entry["Data"], self._attempts[entry["Data"]]))
        passing = [entry for entry, fails in zip(Records, failing, strict=True) if not fails]
        real = iter(self.client.put_records(StreamName=StreamName, Records=passing)["Records"] if passing else [])
        results = [
            {"ErrorCode": self.error_code, "ErrorMessage": "Rate exceeded for shard"} if fails else next(real)
            for fails in failing
        ]
        failed = sum(failing)
        return {"FailedRecordCount": min(failed, 1) if self.localstack_count else failed, "Records": results}


def read_stream(client: Any, stream_name: str) -> list[bytes]:
    """Every record on every shard of a stream, from the start."""
    return StreamTail(client, stream_name).poll()


def read_events(client: Any, stream_name: str) -> list[dict[str, Any]]:
    return [json.loads(data) for data in read_stream(client, stream_name)]


def without_backoff(function_module: Any) -> None:
    """Let a loaded Lambda module retry PutRecords without sleeping, to keep tests fast."""
    publishers = function_module.processor.publishers
    for publisher in (publishers.output, publishers.dead_letters):
        publisher._sleep = lambda seconds: None
