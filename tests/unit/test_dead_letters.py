"""Dead letters: built to fit one Kinesis record whatever the input, saying where the record came from and why."""

from __future__ import annotations

import base64
import json

import pytest

from model_service.errors import RejectedRecord
from model_service.kinesis.events import MAX_REASON_CHARS, dead_letter_record, fit_json_string
from model_service.kinesis.records import MAX_RECORD_BYTES, SourceRecord, record_size


def source(data: str, partition_key: str = "key-1") -> SourceRecord:
    return SourceRecord("ride_events", "shardId-000000000000", "4963", partition_key, data, 1654161514.132)


def test_a_small_record_keeps_its_whole_payload():
    record = dead_letter_record(source("eyJhIjogMX0="), RejectedRecord("decode", "data is not valid JSON"), "cost")
    assert record.event["raw_data"] == "eyJhIjogMX0="
    assert record.event["raw_data_truncated"] is False
    assert record.partition_key == "key-1"


def test_a_dead_letter_names_the_consumer_that_wrote_it_in_its_event_id_too():
    event = dead_letter_record(source("x"), RejectedRecord("decode", "no"), "cost").event
    assert event["consumer"] == "cost"
    assert event["event_id"] == "ride_events:shardId-000000000000:4963/cost"


def test_a_record_without_a_partition_key_is_keyed_by_its_sequence_number():
    record = dead_letter_record(source("x", partition_key=""), RejectedRecord("decode", "no"), "duration")
    assert record.partition_key == "4963"


@pytest.mark.parametrize(
    "data",
    [
        base64.b64encode(b"x" * 1024 * 1024).decode(),
        "é" * 1_048_576,
        "😀" * 524_288,
        '"\\' * 600_000,
        "\x00" * 1_048_576,
    ],
    ids=["base64 of 1 MiB", "accented", "emoji", "quotes and backslashes", "control characters"],
)
def test_whatever_the_payload_the_encoded_dead_letter_fits_one_record(data):
    rejection = RejectedRecord("validate", "é" * 5000, [{"field": "ride.x", "reason": "😀" * 5000}] * 50)
    record = dead_letter_record(source(data, partition_key="ü" * 256), rejection, "x" * 32)
    assert record_size(record.payload(), record.partition_key) <= MAX_RECORD_BYTES
    assert record.event["raw_data_truncated"] is True
    assert data.startswith(record.event["raw_data"])
    assert record_size(record.payload(), record.partition_key) > MAX_RECORD_BYTES * 0.75, "and keeps most it can"


def test_long_reasons_are_cut():
    rejection = RejectedRecord("validate", "r" * 10_000, [{"field": "ride.x", "reason": "e" * 10_000}])
    event = dead_letter_record(source("x"), rejection, "duration").event
    assert len(event["reason"]) == MAX_REASON_CHARS
    assert event["reason"].endswith("...")
    assert len(event["errors"][0]["reason"]) == MAX_REASON_CHARS


@pytest.mark.parametrize("text", ["plain ascii", 'é😀\x00"\\', "😀" * 1000, ""])
@pytest.mark.parametrize("budget", [0, 1, 5, 6, 11, 12, 13, 100, 10_000])
def test_fit_json_string_keeps_the_longest_prefix_within_the_budget(text, budget):
    prefix, cut = fit_json_string(text, budget)
    size = len(json.dumps(prefix)) - 2
    assert text.startswith(prefix)
    assert size <= budget
    assert cut == (prefix != text)
    if cut and len(prefix) < len(text):
        assert len(json.dumps(text[: len(prefix) + 2])) - 2 > budget or budget < 12, "not much shorter than it may be"
