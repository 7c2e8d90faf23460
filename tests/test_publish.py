"""Publishing to Kinesis: within the PutRecords limits, retrying only what failed."""

import boto3
import pytest

from model_service.kinesis.decode import SourceRecord
from model_service.kinesis.events import OutboundRecord
from model_service.kinesis.publish import (
    MAX_BYTES_PER_CALL,
    MAX_BYTES_PER_RECORD,
    MAX_RECORDS_PER_CALL,
    KinesisPublisher,
    chunks,
)
from tests.fakes import FlakyKinesis, read_stream

STREAM = "ride_predictions"


def records(n: int, size: int = 10) -> list[OutboundRecord]:
    return [
        OutboundRecord(
            data=f"{i:08d}".encode().ljust(size, b"x"),
            partition_key=str(i),
            source=SourceRecord("ride_events", "shardId-0", str(1000 + i), str(i), ""),
        )
        for i in range(n)
    ]


@pytest.fixture
def kinesis(aws):
    client = boto3.client("kinesis")
    client.create_stream(StreamName=STREAM, ShardCount=1)
    return client


def publisher(client, sleeps=None, **kwargs) -> KinesisPublisher:
    sleeps = [] if sleeps is None else sleeps
    return KinesisPublisher(client, STREAM, sleep=sleeps.append, jitter=lambda: 1.0, **kwargs)


def test_chunks_hold_at_most_500_records():
    sizes = [len(chunk) for chunk in chunks(records(1201))]
    assert sizes == [MAX_RECORDS_PER_CALL, MAX_RECORDS_PER_CALL, 201]


def test_chunks_stay_under_5_mib_per_call():
    big = records(12, size=MAX_BYTES_PER_RECORD - 100)
    split = list(chunks(big))
    assert [len(chunk) for chunk in split] == [5, 5, 2]
    assert all(sum(len(r.data) + len(r.partition_key) for r in chunk) <= MAX_BYTES_PER_CALL for chunk in split)


def test_chunks_keep_every_record_in_order():
    batch = records(1234)
    assert [r for chunk in chunks(batch) for r in chunk] == batch


def test_every_record_lands_on_the_stream(kinesis):
    result = publisher(kinesis).publish(records(1200))
    assert (result.failed, result.retried) == ([], 0)
    assert sorted(read_stream(kinesis, STREAM)) == sorted(r.data for r in records(1200))


def test_only_failed_entries_are_sent_again(kinesis):
    batch = records(10)
    flaky = FlakyKinesis(kinesis, fail=lambda data, attempt: data in {batch[2].data, batch[7].data} and attempt == 1)
    result = publisher(flaky).publish(batch)
    assert flaky.calls[1] == [batch[2].data, batch[7].data]
    assert (len(flaky.calls), result.failed, result.retried) == (2, [], 2)
    assert sorted(read_stream(kinesis, STREAM)) == sorted(r.data for r in batch)


def test_retries_back_off_exponentially_up_to_the_cap(kinesis):
    sleeps = []
    flaky = FlakyKinesis(kinesis, fail=lambda data, attempt: True)
    publisher(flaky, sleeps, max_attempts=7, base_delay=0.05, max_delay=1.0).publish(records(1))
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_entries_still_failing_after_the_last_attempt_are_returned(kinesis):
    batch = records(5)
    flaky = FlakyKinesis(kinesis, fail=lambda data, attempt: data == batch[3].data)
    result = publisher(flaky, max_attempts=4).publish(batch)
    assert result.failed == [batch[3]]
    assert len(flaky.calls) == 4
    assert len(read_stream(kinesis, STREAM)) == 4


def test_error_code_decides_even_when_failed_record_count_disagrees(kinesis):
    """LocalStack's fault injection fails every entry but reports FailedRecordCount=1."""
    batch = records(6)
    flaky = FlakyKinesis(kinesis, fail=lambda data, attempt: attempt == 1, localstack_count=True)
    result = publisher(flaky).publish(batch)
    assert flaky.calls[1] == [r.data for r in batch]
    assert result.failed == []
    assert len(read_stream(kinesis, STREAM)) == 6


class RaisingOnce:
    def __init__(self, client):
        self.client = client
        self.calls = 0

    def put_records(self, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("connection reset")
        return self.client.put_records(**kwargs)


def test_a_call_that_raises_is_retried_whole(kinesis):
    client = RaisingOnce(kinesis)
    result = publisher(client).publish(records(3))
    assert (client.calls, result.failed, result.retried) == (2, [], 3)


def test_oversize_record_is_reported_failed_without_blocking_the_rest(kinesis):
    batch = records(2) + records(1, size=MAX_BYTES_PER_RECORD + 1)
    result = publisher(kinesis).publish(batch)
    assert result.failed == [batch[2]]
    assert len(read_stream(kinesis, STREAM)) == 2


def test_nothing_to_publish_makes_no_call(kinesis):
    flaky = FlakyKinesis(kinesis, fail=lambda data, attempt: False)
    assert publisher(flaky).publish([]).failed == []
    assert flaky.calls == []
