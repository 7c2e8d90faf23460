"""The ride producer: what it sends, how fast, and what happens to records Kinesis refuses."""

from __future__ import annotations

import base64
import json
from collections import Counter

import numpy as np
import pytest

from model_service.errors import RejectedRecord
from model_service.kinesis.decode import decode_ride_event
from model_service.kinesis.publish import KinesisPublisher
from model_service.sample_data import make_trips
from stream_tools.cli import main
from stream_tools.producer import (
    MALFORMED,
    KinesisUnreachable,
    ProduceReport,
    RideRecord,
    chunk_size,
    produce,
    rides_from_parquet,
    rides_from_trips,
    with_malformed,
)
from tests.endpoints import aws_at, closed_port, refused, silent_endpoint
from tests.faults import KinesisFaults, failing_entries
from tests.lambda_simulation import SimulatedClock
from tests.streams import read_stream

INPUT = "ride_events"


@pytest.fixture
def stream(kinesis):
    kinesis.create_stream(StreamName=INPUT, ShardCount=1)
    return kinesis


def publisher(client) -> KinesisPublisher:
    return KinesisPublisher(client, INPUT)


def valid_records(n: int) -> list[RideRecord]:
    return list(with_malformed(rides_from_trips(make_trips(n)), 0))


class FakeClock(SimulatedClock):
    """Time that passes only when the producer sleeps (each sleep noted), or a test says a call took time."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


def test_each_generated_trip_becomes_one_ride_event_with_the_tlc_fields():
    trips = make_trips(3)
    events = list(rides_from_trips(trips))
    assert events[1] == {
        "ride": {
            "PULocationID": int(trips.PULocationID[1]),
            "DOLocationID": int(trips.DOLocationID[1]),
            "trip_distance": float(trips.trip_distance[1]),
        },
        "ride_id": 1,
    }
    assert [e["ride_id"] for e in events] == [0, 1, 2]


def test_rides_of_a_tlc_month_file_are_ided_by_year_month_and_row(tmp_path):
    path = tmp_path / "green_tripdata_2021-01.parquet"
    make_trips(3).to_parquet(path)
    assert [e["ride_id"] for e in rides_from_parquet(path)] == ["2021/01_0", "2021/01_1", "2021/01_2"]


def test_a_parquet_file_not_named_by_month_ids_rides_by_row(tmp_path):
    path = tmp_path / "trips.parquet"
    make_trips(2).to_parquet(path)
    assert [e["ride_id"] for e in rides_from_parquet(path)] == [0, 1]


def test_trips_without_zone_ids_are_not_sent_and_float_ids_become_integers():
    trips = make_trips(3)
    trips["PULocationID"] = [np.nan, 7.0, 8.0]
    events = list(rides_from_trips(trips))
    assert [e["ride_id"] for e in events] == [1, 2]
    assert [type(e["ride"]["PULocationID"]) for e in events] == [int, int]


def test_the_malformed_fraction_corrupts_that_share_evenly_cycling_through_every_kind():
    records = list(with_malformed(rides_from_trips(make_trips(200)), 0.05))
    malformed = [r for r in records if r.malformed]
    assert len(malformed) == 10
    assert Counter(r.malformed for r in malformed).keys() == set(MALFORMED)
    positions = [i for i, r in enumerate(records) if r.malformed]
    assert positions == list(range(19, 200, 20))


def test_without_a_malformed_fraction_every_record_is_its_ride_as_json():
    events = list(rides_from_trips(make_trips(5)))
    assert [json.loads(r.data) for r in with_malformed(events, 0)] == events


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_every_malformed_kind_is_rejected_by_the_prediction_functions_decoder(kind):
    event = next(rides_from_trips(make_trips(1)))
    with pytest.raises(RejectedRecord):
        decode_ride_event(base64.b64encode(MALFORMED[kind](event)).decode())


def test_a_malformed_fraction_outside_0_to_1_is_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        list(with_malformed(rides_from_trips(make_trips(1)), 1.5))


def test_every_record_lands_on_the_stream(stream):
    records = valid_records(1200)
    report = produce(publisher(stream), records)
    assert (report.sent, report.failed, report.retried) == (1200, 0, 0)
    assert sorted(read_stream(stream, INPUT)) == sorted(r.data for r in records)


def test_each_record_is_keyed_by_its_ride_id(stream):
    produce(publisher(stream), valid_records(3))
    keys = [
        r["PartitionKey"]
        for shard in stream.list_shards(StreamName=INPUT)["Shards"]
        for r in stream.get_records(
            ShardIterator=stream.get_shard_iterator(
                StreamName=INPUT, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        )["Records"]
    ]
    assert keys == ["0", "1", "2"]


def test_throttled_entries_are_sent_again_and_end_up_on_the_stream_once(stream):
    records = valid_records(10)
    throttled = {records[3].data, records[8].data}
    faults = KinesisFaults(stream, [failing_entries(lambda data, attempt: data in throttled and attempt == 1)])
    report = produce(publisher(stream), records, clock=FakeClock())
    assert faults.calls[1].data == [records[3].data, records[8].data]
    assert (report.sent, report.failed, report.retried) == (10, 0, 2)
    assert sorted(read_stream(stream, INPUT)) == sorted(r.data for r in records)


def test_entries_refused_until_the_retry_time_is_up_are_counted_failed_not_sent(stream):
    records = valid_records(4)
    clock = FakeClock()
    faults = KinesisFaults(stream, [failing_entries(lambda data, attempt: data == records[0].data)])
    report = produce(publisher(stream), records, retry_seconds=20, clock=clock)
    assert (report.sent, report.failed) == (3, 1)
    assert clock.now == pytest.approx(20 - 7, abs=0.001), "retried for the retry time, less the 7 s a call may take"
    assert len(faults.calls) > 5


def test_a_record_kinesis_refuses_for_what_it_holds_is_counted_failed(stream):
    records = [*valid_records(2), RideRecord("k" * 300, b"{}")]
    report = produce(publisher(stream), records)
    assert (report.sent, report.failed) == (2, 1)


def test_malformed_records_put_are_counted_by_kind(stream):
    records = list(with_malformed(rides_from_trips(make_trips(len(MALFORMED))), 1))
    report = produce(publisher(stream), records)
    assert report.malformed == Counter(dict.fromkeys(MALFORMED, 1))


def test_at_a_rate_about_ten_calls_a_second_carry_the_rides():
    assert [chunk_size(rate) for rate in (1, 20, 1000, 100_000)] == [1, 2, 100, 500]
    assert chunk_size(None) == 500


def test_a_rate_paces_the_calls_on_a_schedule_so_200_rides_at_100_per_second_take_2_seconds(stream):
    clock = FakeClock()
    report = produce(publisher(stream), valid_records(200), rate=100, clock=clock)
    assert clock.sleeps == pytest.approx([0.0] + [0.1] * 19)
    assert report.sent == 200
    assert report.rides_per_second == pytest.approx(200 / 1.9)


def test_a_slow_call_is_caught_up_on_rather_than_lowering_the_rate(stream):
    clock = FakeClock()

    faults = KinesisFaults(stream, on_call=lambda call: clock.advance(0.25 if len(faults.calls) == 1 else 0))
    produce(publisher(stream), valid_records(40), rate=100, clock=clock)
    assert clock.sleeps == pytest.approx([0.0, 0.0, 0.0, 0.05])


def test_stop_ends_the_run_between_calls(stream):
    calls = []
    report = produce(
        publisher(stream),
        valid_records(50),
        rate=100,
        on_chunk=lambda r, chunk: calls.append(chunk),
        stop=lambda: len(calls) == 2,
    )
    assert report.sent == 20


def test_the_progress_callback_sees_each_chunk_put_and_the_running_totals(stream):
    seen = []
    produce(
        publisher(stream), valid_records(1001), on_chunk=lambda report, chunk: seen.append((report.sent, len(chunk)))
    )
    assert seen == [(500, 500), (1000, 500), (1001, 1)]


def test_a_rate_that_is_not_positive_is_refused(stream):
    with pytest.raises(ValueError, match="positive"):
        produce(publisher(stream), valid_records(1), rate=0)


def test_the_produce_command_sends_generated_rides_some_malformed_and_prints_a_summary(stream, capsys):
    status = main(["produce", "--stream", INPUT, "--generated", "40", "--malformed-fraction", "0.1"])
    out = capsys.readouterr().out
    assert status == 0
    assert "sent:       40" in out
    assert "failed:     0" in out
    assert "malformed:  4 (" in out
    assert len(read_stream(stream, INPUT)) == 40


def test_the_produce_command_sends_a_tlc_file_up_to_the_limit(stream, tmp_path, capsys):
    path = tmp_path / "green_tripdata_2021-02.parquet"
    make_trips(50).to_parquet(path)
    assert main(["produce", "--stream", INPUT, "--parquet", str(path), "--limit", "7"]) == 0
    sent = [json.loads(data) for data in read_stream(stream, INPUT)]
    assert [e["ride_id"] for e in sent] == [f"2021/02_{i}" for i in range(7)]


def test_the_produce_command_sends_to_the_input_stream_setting_by_default(stream, monkeypatch, capsys):
    stream.create_stream(StreamName="other_rides", ShardCount=1)
    monkeypatch.setenv("INPUT_STREAM_NAME", "other_rides")
    assert main(["produce", "--generated", "2"]) == 0
    assert len(read_stream(stream, "other_rides")) == 2


def test_the_produce_command_refuses_a_fraction_above_one(stream, capsys):
    with pytest.raises(SystemExit):
        main(["produce", "--stream", INPUT, "--malformed-fraction", "2"])
    assert "between 0 and 1" in capsys.readouterr().err


def test_entries_re_sent_are_counted_by_why(stream):
    records = valid_records(10)
    KinesisFaults(stream, [failing_entries(lambda data, attempt: data == records[3].data and attempt == 1)])
    report = produce(publisher(stream), records, clock=FakeClock())
    assert report.retry_reasons == {"throttled": 1}


@pytest.mark.parametrize(
    ("reasons", "line"),
    [
        ({}, "0"),
        ({"throttled": 10, "unreachable": 2}, "12 (throttled: 10, unreachable: 2)"),
        (
            {"unreachable": 2, "InternalFailure": 3, "throttled": 1},
            "6 (throttled: 1, unreachable: 2, InternalFailure: 3)",
        ),
    ],
)
def test_re_sent_reads_the_count_then_why_the_usual_reasons_first(reasons, line):
    report = ProduceReport(retried=sum(reasons.values()), retry_reasons=Counter(reasons))
    assert report.resent() == line


def test_a_chunk_no_call_of_which_is_answered_ends_the_run_saying_where_and_why(stream):
    records = valid_records(6)
    faults = KinesisFaults(stream, rules=[], on_call=lambda call: None)

    def go_away(call) -> None:
        if len(faults.calls) > 1:
            raise refused("https://kinesis.us-east-1.amazonaws.com")

    faults.on_call = go_away
    with pytest.raises(KinesisUnreachable) as raised:
        produce(publisher(stream), records, rate=20, retry_seconds=10, clock=FakeClock())
    assert str(raised.value) == "cannot reach Kinesis at https://kinesis.us-east-1.amazonaws.com (connection refused)"
    assert (raised.value.report.sent, raised.value.report.failed) == (2, 2), "what was sent before, then the chunk"


def with_faults(monkeypatch, *rules, on_call=None) -> list[KinesisFaults]:
    """Let the produce command's own Kinesis client meet ``rules`` (the faults hook, made when it makes its client)."""
    from model_service.kinesis import publish

    made: list[KinesisFaults] = []
    real = publish.kinesis_client

    def client(settings, **options):
        kinesis = real(settings, **options)
        faults = KinesisFaults(kinesis, list(rules))
        if on_call is not None:
            faults.on_call = lambda call: on_call(faults, call)
        made.append(faults)
        return kinesis

    monkeypatch.setattr(publish, "kinesis_client", client)
    return made


def test_the_summary_says_re_sent_0_when_nothing_was_sent_again(stream, capsys):
    assert main(["produce", "--stream", INPUT, "--generated", "5"]) == 0
    assert "re-sent:    0\n" in capsys.readouterr().out


def test_the_summary_says_how_many_were_re_sent_and_why(stream, monkeypatch, capsys):
    with_faults(monkeypatch, failing_entries(lambda data, attempt: attempt == 1 and json.loads(data)["ride_id"] == 1))
    assert main(["produce", "--stream", INPUT, "--generated", "5"]) == 0
    out = capsys.readouterr().out
    assert "re-sent:    1 (throttled: 1)\n" in out
    assert "sent:       5\n" in out


def test_produce_to_an_endpoint_that_refuses_is_one_error_line_and_status_2(monkeypatch, capsys):
    endpoint = closed_port()
    aws_at(monkeypatch, endpoint)
    status = main(["produce", "--stream", INPUT, "--generated", "3", "--retry-seconds", "8"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.splitlines()[-1] == f"error: cannot reach Kinesis at {endpoint} (connection refused)"
    assert "Traceback" not in captured.err
    assert captured.out == "", "nothing was sent: no summary"


def test_produce_to_an_endpoint_that_never_answers_is_one_error_line_and_status_2(monkeypatch, capsys):
    monkeypatch.setenv("KINESIS_CONNECT_TIMEOUT_SECONDS", "0.2")
    monkeypatch.setenv("KINESIS_READ_TIMEOUT_SECONDS", "0.2")
    with silent_endpoint() as endpoint:
        aws_at(monkeypatch, endpoint)
        status = main(["produce", "--stream", INPUT, "--generated", "3", "--retry-seconds", "0.5"])
    error = capsys.readouterr().err.splitlines()[-1]
    assert status == 2
    assert error.startswith(f"error: cannot reach Kinesis at {endpoint} (no answer within")


def test_kinesis_going_away_mid_run_prints_the_summary_then_one_error_line(stream, monkeypatch, capsys):
    def go_away(faults, call) -> None:
        if len(faults.calls) > 1:
            raise refused("https://kinesis.us-east-1.amazonaws.com")

    with_faults(monkeypatch, on_call=go_away)
    status = main(["produce", "--stream", INPUT, "--generated", "4", "--rate", "20", "--retry-seconds", "7.1"])
    captured = capsys.readouterr()
    assert status == 2
    assert "sent:       2\n" in captured.out
    assert "re-sent:    " in captured.out
    assert captured.err.splitlines()[-1] == (
        "error: cannot reach Kinesis at https://kinesis.us-east-1.amazonaws.com (connection refused)"
    )
