"""``python -m stream_tools tail``: a stream's events, one JSON object a line, as they arrive."""

from __future__ import annotations

import json
import threading
import time

import pytest

from stream_tools.cli import main
from tests.conftest import DEAD_LETTERS, PREDICTIONS


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
