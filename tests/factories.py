"""Test data built the way production sees it: TLC-shaped trips and Lambda Kinesis events."""

from __future__ import annotations

import base64
import json
from typing import Any

INPUT_STREAM = "ride_events"
SHARD_ID = "shardId-000000000000"
FIRST_SEQUENCE_NUMBER = 49630081666084879290581185630324770398608704880802529282


def rides_from_trips(trips) -> list:
    """The trips of a TLC frame as validated rides, to compare the frame and ride paths."""
    from model_service.schema import validate_ride

    columns = (trips.PULocationID.tolist(), trips.DOLocationID.tolist(), trips.trip_distance.tolist())
    return [
        validate_ride({"PULocationID": pu, "DOLocationID": do, "trip_distance": dist})
        for pu, do, dist in zip(*columns, strict=True)
    ]


def ride_payload(ride_id: Any = 256, pu: Any = 130, do: Any = 205, distance: Any = 3.66) -> dict[str, Any]:
    return {"ride": {"PULocationID": pu, "DOLocationID": do, "trip_distance": distance}, "ride_id": ride_id}


def encode(payload: Any) -> bytes:
    """JSON-encode dicts and lists; pass raw bytes and text through as they are."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload).encode()


def kinesis_record(data: bytes, sequence_number: int, partition_key: str = "1") -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": str(sequence_number),
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": 1654161514.132,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD_ID}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-kinesis-role",
        "awsRegion": "us-east-1",
        "eventSourceARN": f"arn:aws:kinesis:us-east-1:123456789012:stream/{INPUT_STREAM}",
    }


def kinesis_event(payloads: list[Any]) -> dict[str, Any]:
    """A Lambda Kinesis event with one record per payload, sequence numbers ascending."""
    return {
        "Records": [
            kinesis_record(encode(p), FIRST_SEQUENCE_NUMBER + i, partition_key=str(i)) for i, p in enumerate(payloads)
        ]
    }


def raw_kinesis_event(datas: list[str]) -> dict[str, Any]:
    """Like kinesis_event, but ``data`` fields given verbatim (to send what is not base64)."""
    event = kinesis_event([b""] * len(datas))
    for record, data in zip(event["Records"], datas, strict=True):
        record["kinesis"]["data"] = data
    return event


class LambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name = "ride-duration-prediction"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ride-duration-prediction"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/ride-duration-prediction"
    log_stream_name = "2026/11/26/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
