"""Publishing to Kinesis: within the PutRecords limits, to a deadline, each kind of failure handled its own way."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import pytest

from model_service.config import Settings
from model_service.errors import InvalidSetting, StreamUnavailable
from model_service.kinesis.publish import (
    MAX_BYTES_PER_CALL,
    MAX_RECORDS_PER_CALL,
    MIN_PAUSE_SECONDS,
    CollectingPublisher,
    Deadline,
    KinesisPublisher,
    Unreachable,
    chunks,
    entry,
    kinesis_client,
)
from model_service.kinesis.records import MAX_RECORD_BYTES
from tests.endpoints import aws_at, closed_port, refused, silent_endpoint
from tests.faults import EntryErrors, KinesisFaults, ShortResponse, failing_calls, failing_entries
from tests.lambda_simulation import SimulatedClock
from tests.streams import read_stream

STREAM = "ride_predictions"


@dataclass(frozen=True)
class Record:
    data: bytes
    partition_key: str

    def payload(self) -> bytes:
        return self.data


def records(n: int, size: int = 10) -> list[Record]:
    return [Record(f"{i:08d}".encode().ljust(size, b"x"), str(i)) for i in range(n)]


def entries(batch: list[Record]) -> list:
    return [entry(r) for r in batch]


@pytest.fixture
def kinesis(aws):
    client = kinesis_client(Settings())
    client.create_stream(StreamName=STREAM, ShardCount=1)
    return client


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock()


@pytest.fixture
def faults(kinesis, clock) -> KinesisFaults:
    return KinesisFaults(kinesis, on_call=lambda call: clock.advance(0.05))


def publisher(client, **kwargs) -> KinesisPublisher:
    return KinesisPublisher(client, STREAM, jitter=lambda: 1.0, **kwargs)


def test_chunks_hold_at_most_500_records():
    sizes = [len(chunk) for chunk in chunks(entries(records(1201)))]
    assert sizes == [MAX_RECORDS_PER_CALL, MAX_RECORDS_PER_CALL, 201]


def test_chunks_stay_under_5_mib_per_call():
    split = list(chunks(entries(records(12, size=MAX_RECORD_BYTES - 100))))
    assert [len(chunk) for chunk in split] == [5, 5, 2]
    assert all(sum(size for _, _, size in chunk) <= MAX_BYTES_PER_CALL for chunk in split)


def test_chunks_keep_every_record_in_order():
    batch = entries(records(1234))
    assert [e for chunk in chunks(batch) for e in chunk] == batch


def test_every_record_lands_on_the_stream(kinesis, clock):
    result = publisher(kinesis).publish(records(1200), Deadline.after(60, clock))
    assert (result.failed, result.rejected, result.retried) == ([], [], 0)
    assert sorted(read_stream(kinesis, STREAM)) == sorted(r.data for r in records(1200))


def test_only_failed_entries_are_sent_again(kinesis, faults, clock):
    batch = records(10)
    faults.rules.append(failing_entries(lambda data, attempt: data in {batch[2].data, batch[7].data} and attempt == 1))
    result = publisher(kinesis).publish(batch, Deadline.after(60, clock))
    assert faults.calls[1].data == [batch[2].data, batch[7].data]
    assert (len(faults.calls), result.failed, result.retried) == (2, [], 2)
    assert sorted(read_stream(kinesis, STREAM)) == sorted(r.data for r in batch)


def test_retries_back_off_exponentially_up_to_the_cap(kinesis, faults, clock):
    faults.rules.append(failing_entries(lambda data, attempt: attempt <= 6))
    sent_at: list[float] = []
    faults.on_call = lambda call: sent_at.append(clock.now)
    publisher(kinesis, base_delay=0.05, max_delay=1.0).publish(records(1), Deadline.after(60, clock))
    pauses = [later - earlier for earlier, later in pairwise(sent_at)]
    assert pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_entries_are_retried_until_the_deadline_then_returned_failed(kinesis, faults, clock):
    batch = records(5)
    faults.rules.append(failing_entries(lambda data, attempt: data == batch[3].data))
    client = publisher(kinesis)
    deadline = Deadline.after(30, clock)
    result = client.publish(batch, deadline)

    assert result.failed == [batch[3]]
    assert len(faults.calls) > 10
    assert deadline.remaining() < client.call_seconds + MIN_PAUSE_SECONDS, "it kept trying while a call could fit"
    assert deadline.remaining() >= 0, "and never past the deadline"
    assert len(read_stream(kinesis, STREAM)) == 4


def test_no_call_starts_unless_its_timeouts_fit_before_the_deadline(kinesis, faults, clock):
    client = publisher(kinesis)
    assert client.call_seconds == 7.0  # the client's connect + read timeouts, 2 + 5 by default
    result = client.publish(records(3), Deadline.after(6.9, clock))
    assert (len(result.failed), faults.calls) == (3, [])


def test_error_code_decides_even_when_failed_record_count_disagrees(kinesis, faults, clock):
    """LocalStack's fault injection fails every entry but reports FailedRecordCount=1."""
    batch = records(6)
    faults.rules.append(failing_entries(lambda data, attempt: attempt == 1, localstack_count=True))
    result = publisher(kinesis).publish(batch, Deadline.after(60, clock))
    assert faults.calls[1].data == [r.data for r in batch]
    assert result.failed == []
    assert len(read_stream(kinesis, STREAM)) == 6


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ServiceUnavailable", "InternalFailure"])
def test_a_call_that_fails_whole_for_a_transient_reason_is_retried_whole(kinesis, faults, clock, code):
    faults.rules.append(failing_calls(code, when=lambda call: len(faults.calls) == 1))
    result = publisher(kinesis).publish(records(3), Deadline.after(60, clock))
    assert (len(faults.calls), result.failed, result.retried) == (2, [], 3)


def test_a_response_with_fewer_entries_than_sent_counts_as_all_failed(kinesis, faults, clock):
    faults.rules.append(lambda call: ShortResponse(2) if len(faults.calls) == 1 else None)
    result = publisher(kinesis).publish(records(3), Deadline.after(60, clock))
    assert faults.calls[1].data == [r.data for r in records(3)]
    assert result.failed == []


def test_a_validation_error_is_narrowed_to_the_records_that_cause_it(kinesis, faults, clock):
    batch = records(16)
    bad = {batch[5].data, batch[11].data}
    faults.rules.append(failing_calls("ValidationException", when=lambda call: bool(bad & set(call.data))))
    result = publisher(kinesis).publish(batch, Deadline.after(60, clock))

    assert sorted(r.data for r, _ in result.rejected) == sorted(bad)
    assert all(reason.startswith("Kinesis refused the record: ValidationException") for _, reason in result.rejected)
    assert sorted(read_stream(kinesis, STREAM)) == sorted(r.data for r in batch if r.data not in bad)
    assert result.failed == []


@pytest.mark.parametrize("n", [1, 2, 16])
def test_a_refusal_no_record_of_a_call_escapes_is_the_streams_not_the_records(kinesis, faults, clock, n):
    faults.rules.append(failing_calls("InvalidArgumentException"))
    with pytest.raises(StreamUnavailable, match=f"InvalidArgumentException: all {n} records of a call were refused"):
        publisher(kinesis).publish(records(n), Deadline.after(60, clock))


def test_an_entry_refused_for_what_it_holds_is_rejected_not_retried(kinesis, faults, clock):
    batch = records(3)
    faults.rules.append(failing_entries(lambda data, attempt: data == batch[1].data, "InvalidArgumentException"))
    result = publisher(kinesis).publish(batch, Deadline.after(60, clock))
    assert [r for r, _ in result.rejected] == [batch[1]]
    assert len(faults.calls) == 1


@pytest.mark.parametrize(
    "code", ["ResourceNotFoundException", "AccessDeniedException", "KMSDisabledException", "KMSAccessDeniedException"]
)
def test_an_environment_error_raises_naming_the_stream_and_the_cause(kinesis, faults, clock, code):
    faults.rules.append(failing_calls(code))
    with pytest.raises(StreamUnavailable, match=f"{STREAM}: {code}"):
        publisher(kinesis).publish(records(3), Deadline.after(60, clock))


def test_a_missing_stream_is_an_environment_error(kinesis, clock):
    with pytest.raises(StreamUnavailable, match="ResourceNotFoundException"):
        KinesisPublisher(kinesis, "no_such_stream").publish(records(1), Deadline.after(60, clock))


def test_an_oversize_record_is_rejected_without_a_call_and_the_rest_go_out(kinesis, faults, clock):
    batch = [*records(2), *records(1, size=MAX_RECORD_BYTES)]
    result = publisher(kinesis).publish(batch, Deadline.after(60, clock))
    ((oversize, reason),) = result.rejected
    assert oversize is batch[2]
    assert "over Kinesis' limit of 1048576" in reason
    assert [len(call.data) for call in faults.calls] == [2]


def test_nothing_to_publish_makes_no_call(kinesis, faults, clock):
    assert publisher(kinesis).publish([], Deadline.after(60, clock)).failed == []
    assert faults.calls == []


@pytest.mark.parametrize("name", ["", "has space", "x" * 129, "arn:aws:kinesis:us-east-1:1:stream/s"])
def test_a_stream_name_kinesis_would_refuse_is_refused_up_front(kinesis, name):
    with pytest.raises(InvalidSetting, match="not a Kinesis stream name"):
        KinesisPublisher(kinesis, name)


def test_the_collecting_publisher_keeps_what_it_is_given_until_taken(clock):
    collector = CollectingPublisher()
    collector.publish(records(2), Deadline.after(1, clock))
    assert collector.take() == records(2)
    assert collector.take() == []


def test_entries_sent_again_are_counted_by_why_throttled_or_the_code_kinesis_gave(kinesis, faults, clock):
    codes = [None, "ProvisionedThroughputExceededException", None, "InternalFailure", None]
    faults.rules.append(lambda call: EntryErrors(codes) if len(faults.calls) == 1 else None)
    result = publisher(kinesis).publish(records(5), Deadline.after(60, clock))
    assert result.retried == 2
    assert result.retry_reasons == {"throttled": 1, "InternalFailure": 1}
    assert result.unreachable is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("ProvisionedThroughputExceededException", "throttled"),
        ("ThrottlingException", "throttled"),
        ("LimitExceededException", "throttled"),
        ("ServiceUnavailable", "ServiceUnavailable"),
    ],
)
def test_a_call_failing_whole_counts_each_of_its_entries_sent_again_by_its_code(kinesis, faults, clock, code, reason):
    faults.rules.append(failing_calls(code, when=lambda call: len(faults.calls) == 1))
    result = publisher(kinesis).publish(records(3), Deadline.after(60, clock))
    assert (result.retried, result.retry_reasons) == (3, {reason: 3})


def test_a_short_answer_counts_its_entries_sent_again_as_an_incomplete_answer(kinesis, faults, clock):
    faults.rules.append(lambda call: ShortResponse(2) if len(faults.calls) == 1 else None)
    result = publisher(kinesis).publish(records(3), Deadline.after(60, clock))
    assert result.retry_reasons == {"incomplete answer": 3}


def test_an_endpoint_that_refuses_every_call_is_unreachable_with_where_and_why(monkeypatch, clock):
    endpoint = closed_port()
    aws_at(monkeypatch, endpoint)
    result = publisher(kinesis_client(Settings())).publish(records(3), Deadline.after(8, clock))
    assert len(result.failed) == 3
    assert result.unreachable == Unreachable(endpoint, "connection refused")
    assert set(result.retry_reasons) == {"unreachable"}
    assert result.retry_reasons["unreachable"] == result.retried > 0


def test_an_endpoint_that_never_answers_is_unreachable_for_want_of_an_answer(monkeypatch):
    with silent_endpoint() as endpoint:
        aws_at(monkeypatch, endpoint)
        settings = Settings(kinesis_connect_timeout_seconds=0.2, kinesis_read_timeout_seconds=0.2)
        result = publisher(kinesis_client(settings)).publish(records(1), Deadline.after(0.5))
    assert result.unreachable is not None
    assert result.unreachable.endpoint == endpoint
    assert result.unreachable.reason.startswith("no answer within")


def test_an_endpoint_that_answered_once_is_not_called_unreachable_when_it_stops(kinesis, faults, clock):
    faults.rules.append(failing_entries(lambda data, attempt: True))  # every entry throttled while it answers

    def go_away(call) -> None:
        if len(faults.calls) > 1:
            raise refused("https://kinesis.us-east-1.amazonaws.com")

    faults.on_call = go_away
    result = publisher(kinesis).publish(records(2), Deadline.after(20, clock))
    assert len(result.failed) == 2
    assert result.unreachable is None, "Kinesis answered (throttled): not an endpoint out of reach"
    assert result.retry_reasons["throttled"] == 2
    assert result.retry_reasons["unreachable"] == result.retried - 2 > 0
