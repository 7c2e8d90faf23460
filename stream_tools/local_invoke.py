"""What Lambda hands a Kinesis-triggered function, built locally, to run the handlers without AWS.

The offline demo, the benchmark and the tests all call the handlers with
these, so the event they build has one shape: the one Lambda delivers.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

INPUT_STREAM = "ride_events"
SHARD_ID = "shardId-000000000000"
FIRST_SEQUENCE_NUMBER = 49630081666084879290581185630324770398608704880802529282
REGION = "us-east-1"
ACCOUNT = "123456789012"
INPUT_STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{INPUT_STREAM}"
ARRIVAL_TIMESTAMP = 1654161514.132


def kinesis_record(
    data: bytes,
    sequence_number: int | str,
    partition_key: str,
    *,
    stream_arn: str = INPUT_STREAM_ARN,
    shard_id: str = SHARD_ID,
    arrival_timestamp: float = ARRIVAL_TIMESTAMP,
) -> dict[str, Any]:
    """One record as Lambda delivers it from a stream's shard."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": str(sequence_number),
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrival_timestamp,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/lambda-kinesis-role",
        "awsRegion": stream_arn.split(":")[3],
        "eventSourceARN": stream_arn,
    }


def kinesis_event(payloads: Iterable[bytes]) -> dict[str, Any]:
    """One record per payload, from one shard, sequence numbers ascending from FIRST_SEQUENCE_NUMBER."""
    return {
        "Records": [
            kinesis_record(data, FIRST_SEQUENCE_NUMBER + i, partition_key=str(i)) for i, data in enumerate(payloads)
        ]
    }


class LocalContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name = "ride-duration-prediction"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ride-duration-prediction"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/ride-duration-prediction"
    log_stream_name = "2026/11/26/[$LATEST]local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
