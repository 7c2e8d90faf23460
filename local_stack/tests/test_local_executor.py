"""Specifies the Docker-free LocalStack: Lambda functions run by the local-process executor.

One LocalStack serves the module (started through ``local_stack.server``, on a free port so a
LocalStack a developer runs on 4566 is left alone). Each test deploys a tiny function whose
source it writes itself; functions run on this interpreter (``LOCAL_LAMBDA_PYTHON``).
"""

from __future__ import annotations

import functools
import io
import json
import sys
import textwrap
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from local_stack import server
from local_stack.aws import wait_until
from local_stack.server import free_port

REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"


@pytest.fixture(scope="module")
def image_code_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands in for the project tree that Image functions run from."""
    return tmp_path_factory.mktemp("image-code")


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, image_code_root: Path) -> Iterator[server.LocalStack]:
    started = time.monotonic()
    with server.start(
        {"LOCAL_LAMBDA_PYTHON": sys.executable, "LOCAL_LAMBDA_IMAGE_CODE_ROOT": str(image_code_root)},
        port=free_port(),
        log_path=server.LOCALSTACK_HOME / "test-local-executor.log",
    ) as running:
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\nLocalStack started in {time.monotonic() - started:.1f} s at {running.endpoint}")
        yield running


@pytest.fixture(scope="module")
def aws(stack: server.LocalStack) -> Callable[[str], object]:
    """``aws("kinesis")``: a client of the running LocalStack (made once per service)."""

    @functools.cache
    def client(service: str):
        return boto3.client(
            service,
            endpoint_url=stack.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return client


def zipped_handler(source: str) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handler.py", textwrap.dedent(source))
    return archive.getvalue()


def wait_for_update(lambda_client, name: str) -> None:
    """Wait for a create/update to finish (polling faster than boto3's 1 s waiter)."""

    def settled() -> bool:
        config = lambda_client.get_function_configuration(FunctionName=name)
        if config["State"] == "Failed" or config.get("LastUpdateStatus") == "Failed":
            pytest.fail(f"function {name} failed: {config.get('StateReason')}")
        return config["State"] == "Active" and config.get("LastUpdateStatus") != "InProgress"

    wait_until(settled, 30, f"function {name} to become active")


@pytest.fixture
def deploy(aws) -> Callable[..., str]:
    """Create a Python function from handler source; returns its (unique) name."""
    lambda_client = aws("lambda")

    def create(source: str, environment: dict[str, str] | None = None, timeout: int = 10) -> str:
        name = f"fn-{uuid.uuid4().hex[:8]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": zipped_handler(source)},
            Environment={"Variables": environment or {}},
            Timeout=timeout,
        )
        wait_for_update(lambda_client, name)
        return name

    return create


def invoke(aws, name: str, event: object = None) -> tuple[object, str | None]:
    """Invoke synchronously; returns the decoded payload and the FunctionError (or None)."""
    response = aws("lambda").invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def test_invoke_returns_the_handler_result(aws, deploy):
    name = deploy("""
        def handler(event, context):
            return {"doubled": event["value"] * 2}
    """)

    assert invoke(aws, name, {"value": 21}) == ({"doubled": 42}, None)


def test_function_environment_variables_reach_the_handler(aws, deploy):
    name = deploy(
        """
        import os

        def handler(event, context):
            return os.environ["MODEL_NAME"]
        """,
        environment={"MODEL_NAME": "ride-duration"},
    )

    assert invoke(aws, name) == ("ride-duration", None)


def test_handler_gets_localstack_as_its_aws_endpoint(aws, deploy, stack):
    name = deploy("""
        import os

        def handler(event, context):
            return os.environ["AWS_ENDPOINT_URL"]
    """)

    assert invoke(aws, name) == (stack.endpoint, None)


def test_context_has_request_id_function_name_memory_arn_and_remaining_time(aws, deploy):
    name = deploy(
        """
        def handler(event, context):
            return {
                "request_id": context.aws_request_id,
                "function_name": context.function_name,
                "memory": context.memory_limit_in_mb,
                "arn": context.invoked_function_arn,
                "remaining_ms": context.get_remaining_time_in_millis(),
            }
    """,
        timeout=10,
    )

    payload, _ = invoke(aws, name)

    assert len(payload["request_id"]) == 36
    assert payload["function_name"] == name
    assert payload["memory"] == "128"  # a string, as in the AWS Python runtime
    assert payload["arn"].endswith(f":function:{name}")
    assert 9000 < payload["remaining_ms"] <= 10000


def test_raising_handler_gives_function_error_with_message_type_and_stack(aws, deploy):
    name = deploy("""
        def handler(event, context):
            raise ValueError("trip has no pickup time")
    """)

    payload, function_error = invoke(aws, name)

    assert function_error == "Unhandled"
    assert payload["errorMessage"] == "trip has no pickup time"
    assert payload["errorType"] == "ValueError"
    assert any("handler.py" in frame for frame in payload["stackTrace"])


def test_module_failing_at_import_gives_an_init_function_error(aws, deploy):
    name = deploy("""
        raise RuntimeError("model could not be loaded")

        def handler(event, context):
            return "unreachable"
    """)

    payload, function_error = invoke(aws, name)

    assert function_error == "Unhandled"
    assert payload["errorType"] == "RuntimeError"
    assert payload["errorMessage"] == "model could not be loaded"


def test_function_works_once_its_failing_import_is_fixed(aws, deploy):
    name = deploy("import module_that_does_not_exist\n\ndef handler(event, context):\n    return 1\n")
    _, function_error = invoke(aws, name)
    assert function_error == "Unhandled"

    lambda_client = aws("lambda")
    lambda_client.update_function_code(
        FunctionName=name, ZipFile=zipped_handler("def handler(event, context):\n    return 'fixed'\n")
    )
    wait_for_update(lambda_client, name)

    assert invoke(aws, name) == ("fixed", None)


def test_handler_output_reaches_cloudwatch_logs(aws, deploy):
    marker = f"scored-{uuid.uuid4().hex}"
    name = deploy(f"""
        import logging

        def handler(event, context):
            print("{marker} printed")
            logging.getLogger().warning("{marker} logged")
            return None
    """)
    invoke(aws, name)
    logs = aws("logs")

    def messages() -> str:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return ""
        text = "".join(event["message"] for event in events)
        return text if f"{marker} logged" in text else ""

    text = wait_until(messages, 10, "the invocation's logs in CloudWatch Logs")
    assert f"{marker} printed" in text
    assert "END RequestId" in text


def test_invocation_outliving_the_timeout_fails_as_timed_out(aws, deploy):
    name = deploy(
        """
        import time

        def handler(event, context):
            time.sleep(30)
    """,
        timeout=1,
    )

    payload, function_error = invoke(aws, name)

    assert function_error == "Unhandled"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


def test_function_is_reinitialised_after_a_timeout(aws, deploy):
    name = deploy(
        """
        import time

        def handler(event, context):
            time.sleep(event.get("sleep", 0))
            return "awake"
    """,
        timeout=1,
    )
    invoke(aws, name, {"sleep": 30})

    assert invoke(aws, name) == ("awake", None)


def test_image_function_runs_the_handler_named_by_its_image_config_command(aws, image_code_root):
    (image_code_root / "decision_function.py").write_text(
        "def lambda_handler(event, context):\n    return 'decision'\n"
    )
    name = f"image-{uuid.uuid4().hex[:8]}"
    lambda_client = aws("lambda")
    # No image is pulled or built: any ImageUri will do.
    lambda_client.create_function(
        FunctionName=name,
        PackageType="Image",
        Code={"ImageUri": "000000000000.dkr.ecr.us-east-1.amazonaws.com/ride-duration:latest"},
        ImageConfig={"Command": ["decision_function.lambda_handler"]},
        Role=ROLE,
    )
    wait_for_update(lambda_client, name)

    assert invoke(aws, name) == ("decision", None)


def test_start_refuses_a_port_already_in_use(stack):
    with pytest.raises(server.LocalStackError, match="already in use"):
        server.start(port=stack.port)


def test_settings_can_be_changed_while_running(aws, stack):
    kinesis = aws("kinesis")
    stack.set_config("KINESIS_ERROR_PROBABILITY", 1.0)
    try:
        response = kinesis.put_records(StreamName="any", Records=[{"Data": b"ride", "PartitionKey": "1"}])
    finally:
        stack.set_config("KINESIS_ERROR_PROBABILITY", 0.0)

    assert response["Records"][0]["ErrorCode"] == "ProvisionedThroughputExceededException"


def test_kinesis_event_source_mapping_invokes_the_handler(aws, deploy):
    kinesis = aws("kinesis")
    source, sink = f"rides-{uuid.uuid4().hex[:8]}", f"predictions-{uuid.uuid4().hex[:8]}"
    for stream in (source, sink):
        kinesis.create_stream(StreamName=stream, ShardCount=1)
    for stream in (source, sink):
        kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    # The function reaches Kinesis through the AWS_ENDPOINT_URL the executor injects.
    name = deploy(
        """
        import base64, json, os
        import boto3

        def handler(event, context):
            kinesis = boto3.client("kinesis")
            for record in event["Records"]:
                ride = json.loads(base64.b64decode(record["kinesis"]["data"]))
                prediction = {"ride_id": ride["ride_id"], "duration": 12.5}
                kinesis.put_record(
                    StreamName=os.environ["OUTPUT_STREAM"],
                    Data=json.dumps(prediction),
                    PartitionKey=str(ride["ride_id"]),
                )
        """,
        environment={"OUTPUT_STREAM": sink},
    )
    source_arn = kinesis.describe_stream_summary(StreamName=source)["StreamDescriptionSummary"]["StreamARN"]
    lambda_client = aws("lambda")
    mapping = lambda_client.create_event_source_mapping(
        EventSourceArn=source_arn, FunctionName=name, StartingPosition="TRIM_HORIZON", BatchSize=10
    )
    wait_until(
        lambda: lambda_client.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled",
        30,
        "the event source mapping to be enabled",
    )

    kinesis.put_record(StreamName=source, Data=json.dumps({"ride_id": 256}), PartitionKey="256")

    shard = kinesis.list_shards(StreamName=sink)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=sink, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]

    def prediction() -> dict | None:
        nonlocal iterator
        response = kinesis.get_records(ShardIterator=iterator)
        iterator = response["NextShardIterator"]
        return json.loads(response["Records"][0]["Data"]) if response["Records"] else None

    assert wait_until(prediction, 30, "the prediction on the output stream") == {
        "ride_id": 256,
        "duration": 12.5,
    }
