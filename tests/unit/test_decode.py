"""Decoding a Kinesis record: each way a payload can be bad is named, with its stage."""

import base64

import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent

from model_service.errors import RejectedRecord
from model_service.kinesis.decode import decode_ride_event
from model_service.kinesis.records import SourceRecord
from stream_tools.local_invoke import FIRST_SEQUENCE_NUMBER, INPUT_STREAM, SHARD_ID
from tests.factories import kinesis_event, ride_payload


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rejected(data_b64: str) -> RejectedRecord:
    with pytest.raises(RejectedRecord) as raised:
        decode_ride_event(data_b64)
    return raised.value


def test_course_record_decodes_to_a_ride_event():
    event = decode_ride_event(
        b64(b'{"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 256}')
    )
    assert event["ride_id"] == 256


def test_data_that_is_not_base64_is_rejected_at_decode():
    rejection = rejected("not base64!!")
    assert (rejection.stage, "base64" in rejection.reason) == ("decode", True)


def test_bytes_that_are_not_utf8_are_rejected_at_decode():
    rejection = rejected(b64(b"\xff\xfe\x00"))
    assert (rejection.stage, "UTF-8" in rejection.reason) == ("decode", True)


def test_text_that_is_not_json_is_rejected_at_decode():
    rejection = rejected(b64(b"{ride: 1"))
    assert (rejection.stage, "not valid JSON" in rejection.reason) == ("decode", True)


def test_empty_payload_is_rejected_at_decode():
    assert rejected(b64(b"")).stage == "decode"


@pytest.mark.parametrize("document", [b"[1, 2]", b'"ride"', b"42", b"null"])
def test_json_that_is_not_an_object_is_rejected_at_validate(document):
    rejection = rejected(b64(document))
    assert rejection.stage == "validate"
    assert rejection.errors[0]["field"] == "<record>"


def test_json_nan_distance_is_rejected_at_validate():
    rejection = rejected(b64(b'{"ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": NaN}, "ride_id": 1}'))
    assert rejection.stage == "validate"
    assert rejection.errors[0]["field"] == "ride.trip_distance"


def test_validation_reason_names_field_and_why():
    rejection = rejected(b64(b'{"ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": -3}, "ride_id": 1}'))
    assert rejection.reason.startswith("ride.trip_distance: Input should be greater than or equal to 0")


def test_source_record_carries_stream_shard_sequence_and_key():
    record = next(iter(KinesisStreamEvent(kinesis_event([ride_payload()])).records))
    source = SourceRecord.from_kinesis(record)
    assert (source.stream_name, source.shard_id, source.sequence_number, source.partition_key) == (
        INPUT_STREAM,
        SHARD_ID,
        str(FIRST_SEQUENCE_NUMBER),
        "0",
    )


def test_event_id_is_stable_and_unique_per_input_record_and_consumer():
    event = kinesis_event([ride_payload(), ride_payload()])
    first = [SourceRecord.from_kinesis(r) for r in KinesisStreamEvent(event).records]
    again = [SourceRecord.from_kinesis(r) for r in KinesisStreamEvent(event).records]
    ids = {source.event_id(consumer) for source in first for consumer in ("duration", "cost")}
    assert [s.event_id("cost") for s in first] == [s.event_id("cost") for s in again]
    assert len(ids) == 4
    assert first[0].event_id("cost") == f"{INPUT_STREAM}:{SHARD_ID}:{FIRST_SEQUENCE_NUMBER}/cost"
