"""``python -m stream_tools tail``: a stream's events, one JSON object a line, as they arrive."""

from __future__ import annotations

import json
import threading
import time

import pytest

from stream_tools.cli import main
from tests.conftest import DEAD_LETTERS, PREDICTIONS
from tests.endpoints import aws_at, closed_port, refused


def put(client, stream: str, *events: object) -> None:
    client.put_records(
        StreamName=stream,
        Records=[{"Data": e if isinstance(e, bytes) else json.dumps(e).encode(), "PartitionKey": "k"} for e in events],
    )


def printed(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_from_the_start_it_prints_every_event_already_on_the_stream_in_order(kinesis, capsys):
    put(kinesis, PREDICTIONS, {"n": 1}, {"n": 2}, {"n": 3})
    assert main(["tail", "--stream", PREDICTIONS, "--from-start", "--limit", "3"]) == 0
    assert printed(capsys) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_it_stops_after_the_limit_even_when_more_events_are_there(kinesis, capsys):
    put(kinesis, PREDICTIONS, {"n": 1}, {"n": 2}, {"n": 3})
    assert main(["tail", "--stream", PREDICTIONS, "--from-start", "--limit", "2"]) == 0
    assert printed(capsys) == [{"n": 1}, {"n": 2}]


def test_without_from_start_only_events_put_after_it_started_are_printed(kinesis, capsys):
    put(kinesis, PREDICTIONS, {"n": "old"})
    stop = threading.Event()

    def keep_putting() -> None:  # until the tail has read one: however long it takes to start, it gets one
        while not stop.wait(0.1):
            put(kinesis, PREDICTIONS, {"n": "new"})

    producer = threading.Thread(target=keep_putting)
    producer.start()
    try:
        status = main(["tail", "--stream", PREDICTIONS, "--limit", "1", "--timeout", "10", "--interval", "0.05"])
    finally:
        stop.set()
        producer.join()
    assert status == 0
    assert printed(capsys) == [{"n": "new"}]


def test_it_reads_the_predictions_stream_by_default(kinesis, capsys):
    put(kinesis, PREDICTIONS, {"n": 1})
    put(kinesis, DEAD_LETTERS, {"dead": True})
    assert main(["tail", "--from-start", "--limit", "1"]) == 0
    assert printed(capsys) == [{"n": 1}]


def test_a_record_that_is_not_json_is_printed_as_its_raw_text(kinesis, capsys):
    put(kinesis, DEAD_LETTERS, b"not json")
    assert main(["tail", "--stream", DEAD_LETTERS, "--from-start", "--limit", "1"]) == 0
    assert printed(capsys) == [{"raw": "not json"}]


def test_timeout_short_of_the_limit_exits_1_saying_how_many_arrived(kinesis, capsys):
    put(kinesis, PREDICTIONS, {"n": 1})
    started = time.monotonic()
    status = main(["tail", "--from-start", "--limit", "5", "--timeout", "0.3", "--interval", "0.05"])
    assert status == 1
    assert time.monotonic() - started < 5
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ['{"n": 1}']
    assert "1 of 5 events" in captured.err


def test_timeout_without_a_limit_ends_normally(kinesis, capsys):
    put(kinesis, PREDICTIONS, {"n": 1})
    assert main(["tail", "--from-start", "--timeout", "0.2", "--interval", "0.05"]) == 0
    assert printed(capsys) == [{"n": 1}]


def test_a_limit_that_is_not_positive_is_refused(kinesis, capsys):
    with pytest.raises(SystemExit):
        main(["tail", "--limit", "0"])
    assert "must be positive" in capsys.readouterr().err


def test_a_stream_missing_at_the_start_is_one_line_and_status_2(kinesis, capsys):
    assert main(["tail", "--stream", "no_such_stream", "--timeout", "5"]) == 2
    assert capsys.readouterr().err == (
        "error: cannot tail the stream no_such_stream (no such stream at https://kinesis.us-east-1.amazonaws.com)\n"
    )


def test_an_endpoint_that_refuses_at_the_start_is_one_line_and_status_2(monkeypatch, capsys):
    endpoint = closed_port()
    aws_at(monkeypatch, endpoint)
    assert main(["tail", "--stream", PREDICTIONS, "--timeout", "5"]) == 2
    assert capsys.readouterr().err == f"error: cannot reach Kinesis at {endpoint} (connection refused)\n"


def hooked_tail_client(monkeypatch, event: str, handler) -> None:
    """The tail's own client, with ``handler`` on one of its botocore events (``after-call.kinesis.GetRecords``)."""
    from model_service.kinesis import read

    real = read.reading_client

    def client():
        made = real()
        made.meta.events.register(event, handler)
        return made

    monkeypatch.setattr(read, "reading_client", client)


def test_a_stream_deleted_while_tailed_is_one_line_lost_the_stream_and_status_2(kinesis, monkeypatch, capsys):
    put(kinesis, PREDICTIONS, {"n": 1})
    hooked_tail_client(
        monkeypatch, "after-call.kinesis.GetRecords", lambda **kwargs: kinesis.delete_stream(StreamName=PREDICTIONS)
    )
    status = main(["tail", "--stream", PREDICTIONS, "--from-start", "--timeout", "5", "--interval", "0.05"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out.splitlines() == ['{"n": 1}'], "what arrived before is printed"
    assert captured.err == (
        f"error: lost the stream {PREDICTIONS} (it no longer exists at https://kinesis.us-east-1.amazonaws.com)\n"
    )


def test_an_endpoint_that_stops_answering_mid_tail_is_one_line_lost_the_stream_and_status_2(
    kinesis, monkeypatch, capsys
):
    calls = []

    def stop_answering(**kwargs) -> None:
        calls.append(1)
        if len(calls) > 2:  # the start's check and the first poll are answered, then the stack is gone
            raise refused("https://kinesis.us-east-1.amazonaws.com")

    hooked_tail_client(monkeypatch, "before-call.kinesis.ListShards", stop_answering)
    status = main(["tail", "--stream", PREDICTIONS, "--timeout", "5", "--interval", "0.05"])
    assert status == 2
    assert capsys.readouterr().err == (
        f"error: lost the stream {PREDICTIONS} (connection refused at https://kinesis.us-east-1.amazonaws.com)\n"
    )
