"""Faults Kinesis and its operators cause, against the real handler and Lambda's retries as the template sets them.

The handler is the prediction function on moto's Kinesis, once for each
consumer of the ride stream (duration and cost), with faults injected by
botocore hooks on its own client (tests/faults.py); Lambda's event source
mapping is simulated with the template's settings (tests/lambda_simulation.py),
on a simulated clock, so minutes of outage take milliseconds. Each simulated
run ends with the same check: every input record is a prediction or a dead
letter, and a record that came out more than once came out the same, under one
event_id. The endpoint that never answers is a real socket, in real time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import CredentialRetrievalError, NoCredentialsError, PartialCredentialsError

from model_service.config import Settings
from model_service.errors import InvalidSetting
from model_service.kinesis.function import prediction_function
from stream_tools.local_invoke import INPUT_STREAM, LocalContext
from tests.conftest import DEAD_LETTERS, PREDICTIONS
from tests.factories import kinesis_event, ride_payload
from tests.faults import THROTTLED, KinesisFaults, PutRecordsCall, ShortResponse, failing_calls, failing_entries
from tests.lambda_simulation import EventSourceSettings, SimulatedClock, SimulatedEventSource
from tests.streams import read_events

CALL_SECONDS = 0.05
"""How long each PutRecords call takes on the simulated clock."""

MALFORMED = [b"not JSON at all", json.dumps(ride_payload(ride_id="bad", distance=-3)).encode()]


def payloads(rides: int = 40) -> list[bytes]:
    valid = [json.dumps(ride_payload(ride_id=f"r{i}", pu=1 + i, distance=0.5 + i)).encode() for i in range(rides)]
    return valid[: rides // 2] + MALFORMED + valid[rides // 2 :]


@dataclass
class Harness:
    function: Any
    kinesis: Any
    clock: SimulatedClock
    faults: KinesisFaults
    consumer: str
    """duration or cost: each consumer of the ride stream goes through every fault."""

    def run(self, data: list[bytes], before: Any = None) -> SimulatedEventSource:
        """Deliver ``data`` as one shard's records, Lambda retrying as the template says.

        ``before(now)`` is called before every invocation, to change the environment as time passes.
        """
        settings = EventSourceSettings.from_template(f"{self.consumer.capitalize()}Consumer")
        source = SimulatedEventSource(self.function, settings, self.clock)
        if before is not None:
            source.before_invocation = before
        source.run(kinesis_event(data)["Records"])
        return source

    def outcomes(self) -> dict[str, set[tuple[str, str]]]:
        """event_id -> the distinct outputs published under it."""
        found: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for event in read_events(self.kinesis, PREDICTIONS):
            found[event["event_id"]].add(("prediction", json.dumps(event["prediction"], sort_keys=True)))
        for event in read_events(self.kinesis, DEAD_LETTERS):
            found[event["event_id"]].add(("dead letter", event["stage"]))
        return found

    def assert_every_record_accounted_for(self, data: list[bytes], source: SimulatedEventSource) -> None:
        records = kinesis_event(data)["Records"]
        expected = {f"{INPUT_STREAM}:{r['eventID']}/{self.consumer}" for r in records}
        assert (source.given_up, source.expired) == ([], []), "Lambda gave records up"
        outcomes = self.outcomes()
        assert set(outcomes) == expected, f"{len(expected - set(outcomes))} records lost"
        repeated_differently = {event_id: out for event_id, out in outcomes.items() if len(out) > 1}
        assert not repeated_differently, "a record came out as different events"


@pytest.fixture(params=["duration", "cost"])
def harness(request, build_function, kinesis, consumer_models) -> Harness:
    function = build_function("prediction", MODEL_URI=str(consumer_models[request.param]))
    clock = SimulatedClock()
    function.publishers.clock = clock
    faults = KinesisFaults(function.publishers.output.client, on_call=lambda call: clock.advance(CALL_SECONDS))
    return Harness(function, kinesis, clock, faults, request.param)


def throttled_for(harness: Harness, seconds: float, code: str = THROTTLED) -> None:
    """Every entry to the predictions stream refused for ``seconds`` from now."""
    until = harness.clock.now + seconds
    harness.faults.rules.append(
        failing_entries(lambda data, attempt: harness.clock.now < until, code, stream=PREDICTIONS)
    )


def dead_letters(harness: Harness) -> list[dict[str, Any]]:
    return read_events(harness.kinesis, DEAD_LETTERS)


@pytest.mark.parametrize("seconds", [5, 20, 40])
def test_a_throttling_window_shorter_than_the_timeout_is_waited_out_within_one_invocation(harness, seconds):
    throttled_for(harness, seconds)
    data = payloads()
    source = harness.run(data)

    harness.assert_every_record_accounted_for(data, source)
    (invocation,) = source.invocations
    assert invocation.response == {"batchItemFailures": []}
    assert invocation.seconds >= seconds


def test_a_throttling_window_longer_than_the_timeout_is_retried_by_lambda_from_the_reported_record(harness):
    settings = EventSourceSettings.from_template()
    throttled_for(harness, 2.5 * settings.timeout_seconds)
    data = payloads()
    source = harness.run(data)

    harness.assert_every_record_accounted_for(data, source)
    assert len(source.invocations) >= 3
    assert not [i for i in source.invocations if i.error], "each invocation answered in time, without an error"
    first = source.invocations[0].response["batchItemFailures"]
    assert first == [{"itemIdentifier": kinesis_event(data)["Records"][0]["kinesis"]["sequenceNumber"]}]


@pytest.mark.parametrize("code", ["InternalFailure", "KMSThrottlingException"])
def test_other_transient_entry_errors_are_retried_like_throttling(harness, code):
    throttled_for(harness, 10, code)
    data = payloads()
    source = harness.run(data)
    harness.assert_every_record_accounted_for(data, source)
    assert len(source.invocations) == 1


@pytest.mark.parametrize("code", ["ThrottlingException", "ServiceUnavailable", "InternalFailure"])
def test_a_call_failing_whole_for_a_transient_reason_is_retried(harness, code):
    until = harness.clock.now + 10
    harness.faults.rules.append(failing_calls(code, stream=PREDICTIONS, when=lambda call: harness.clock.now < until))
    data = payloads()
    source = harness.run(data)
    harness.assert_every_record_accounted_for(data, source)
    assert len(source.invocations) == 1


def test_a_record_kinesis_refuses_is_dead_lettered_at_publish_and_the_rest_go_out(harness):
    """A call-level ValidationException is narrowed down to the entry that causes it."""
    harness.faults.rules.append(
        failing_calls(
            "ValidationException",
            stream=PREDICTIONS,
            when=lambda call: any(b'"refused-by-kinesis"' in data for data in call.data),
        )
    )
    data = payloads()
    data.insert(7, json.dumps(ride_payload(ride_id="refused-by-kinesis")).encode())
    source = harness.run(data)

    harness.assert_every_record_accounted_for(data, source)
    (refused,) = [d for d in dead_letters(harness) if d["stage"] == "publish"]
    assert refused["source"]["sequence_number"] == kinesis_event(data)["Records"][7]["kinesis"]["sequenceNumber"]
    assert refused["reason"].startswith("Kinesis refused the record: ValidationException")
    assert [i.response for i in source.invocations] == [{"batchItemFailures": []}]


ENVIRONMENT_ERRORS = [
    "AccessDeniedException",
    "KMSDisabledException",
    "KMSAccessDeniedException",
    "KMSNotFoundException",
    "KMSInvalidStateException",
    "KMSOptInRequired",
]


@pytest.mark.parametrize("code", ENVIRONMENT_ERRORS)
def test_an_environment_error_fails_the_invocation_until_fixed_and_dead_letters_no_valid_ride(harness, code, caplog):
    outage = 600.0
    until = harness.clock.now + outage
    harness.faults.rules.append(failing_calls(code, stream=PREDICTIONS, when=lambda call: harness.clock.now < until))
    data = payloads()
    source = harness.run(data)

    harness.assert_every_record_accounted_for(data, source)
    assert {d["event_id"] for d in dead_letters(harness)} == {
        f"{INPUT_STREAM}:{r['eventID']}/{harness.consumer}" for r in kinesis_event(data)["Records"][20:22]
    }, "only the malformed records are dead letters"
    failed = [i for i in source.invocations if i.error]
    assert failed
    assert all(code in str(i.error) and PREDICTIONS in str(i.error) for i in failed)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == len(failed), "one error log per failed invocation"
    assert all(PREDICTIONS in message and code in message for message in errors)


def test_a_refusal_every_record_meets_alone_is_the_environments_and_dead_letters_no_valid_ride(harness, caplog):
    """A stream that refuses every call as invalid (its settings, not the records): not 38 dead letters."""
    until = harness.clock.now + 600.0
    harness.faults.rules.append(
        failing_calls("ValidationException", stream=PREDICTIONS, when=lambda call: harness.clock.now < until)
    )
    data = payloads()
    source = harness.run(data)

    harness.assert_every_record_accounted_for(data, source)
    assert len(dead_letters(harness)) == len(MALFORMED), "only the malformed records are dead letters"
    failed = [i for i in source.invocations if i.error]
    assert failed
    assert all("records of a call were refused alone" in str(i.error) for i in failed)


@pytest.mark.parametrize(
    "error",
    [
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        CredentialRetrievalError(provider="container-role", error_msg="connection refused"),
        NoCredentialsError(),
    ],
    ids=type,
)
def test_credentials_botocore_cannot_sign_with_fail_the_invocation_until_fixed(harness, error):
    until = harness.clock.now + 600.0

    def unsigned(call: PutRecordsCall) -> None:
        if call.stream == PREDICTIONS and harness.clock.now < until:
            raise error

    harness.faults.rules.append(unsigned)
    data = payloads()
    source = harness.run(data)

    harness.assert_every_record_accounted_for(data, source)
    failed = [i for i in source.invocations if i.error]
    assert failed
    assert all(type(error).__name__ in str(i.error) and PREDICTIONS in str(i.error) for i in failed)
    assert len(dead_letters(harness)) == len(MALFORMED)


def missing_for(harness: Harness, stream: str, seconds: float) -> Callable[[float], None]:
    """Delete ``stream`` now; the returned hook creates it again before the first invocation ``seconds`` later."""
    harness.kinesis.delete_stream(StreamName=stream)
    start = harness.clock.now
    created = []

    def create_when_due(now: float) -> None:
        if not created and now - start >= seconds:
            created.append(harness.kinesis.create_stream(StreamName=stream, ShardCount=1))

    return create_when_due


def test_a_missing_predictions_stream_fails_the_invocation_until_it_is_created(harness):
    data = payloads()
    source = harness.run(data, before=missing_for(harness, PREDICTIONS, 3600))

    harness.assert_every_record_accounted_for(data, source)
    assert "ResourceNotFoundException" in str(source.invocations[0].error)


def test_a_missing_dead_letter_stream_fails_the_invocation_until_it_is_created(harness):
    """The malformed records' dead letters cannot be put: the batch waits for the stream rather than losing them."""
    data = payloads()
    source = harness.run(data, before=missing_for(harness, DEAD_LETTERS, 7200))

    harness.assert_every_record_accounted_for(data, source)
    assert "ResourceNotFoundException" in str(source.invocations[0].error)
    assert len(dead_letters(harness)) >= len(MALFORMED)


def test_a_response_with_fewer_entries_than_sent_counts_as_all_failed(harness):
    answered: list[PutRecordsCall] = []

    def short_once(call: PutRecordsCall) -> ShortResponse | None:
        if call.stream != PREDICTIONS or answered:
            return None
        answered.append(call)
        return ShortResponse(entries=len(call.data) - 1)

    harness.faults.rules.append(short_once)
    data = payloads()
    source = harness.run(data)

    harness.assert_every_record_accounted_for(data, source)
    assert [i.response for i in source.invocations] == [{"batchItemFailures": []}]
    assert len(harness.faults.calls[1].data) == len(answered[0].data), "every entry was sent again"


def never_answer(connection: socket.socket, stop: threading.Event) -> None:
    stop.wait()


def drip_the_answer(connection: socket.socket, stop: threading.Event) -> None:
    """Read the request, then answer a byte every 0.1 s: no socket read ever waits long enough to time out."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 100000\r\n\r\n{"
    connection.recv(1 << 20)
    for byte in answer + b" " * 100_000:
        if stop.wait(0.1):
            return
        connection.sendall(bytes([byte]))


@contextlib.contextmanager
def endpoint_that(serve: Callable[[socket.socket, threading.Event], None]) -> Iterator[tuple[str, list[socket.socket]]]:
    """An endpoint on loopback that accepts every connection and ``serve``s each; and the connections it holds."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve_quietly(connection: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the client gave up and closed it
            serve(connection, stop)

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                connection = server.accept()[0]
                held.append(connection)
                threading.Thread(target=serve_quietly, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", held
    finally:
        stop.set()
        thread.join()
        for connection in [*held, server]:
            connection.close()


class RealTimeContext(LocalContext):
    def __init__(self, seconds: float) -> None:
        self.ends_at = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends_at - time.monotonic()) * 1000))


def use_endpoint(monkeypatch, endpoint: str) -> None:
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    "serve", [never_answer, drip_the_answer], ids=["never answers", "drips its answer a byte every 0.1 s"]
)
def test_an_endpoint_that_does_not_answer_in_time_is_given_up_on_before_the_function_times_out(
    serve, mlflow_model_dir, monkeypatch
):
    """Each call is bounded by wall-clock time: boto3's read timeout bounds each socket read, which dripping beats."""
    settings = {
        "MODEL_URI": str(mlflow_model_dir),
        "KINESIS_CONNECT_TIMEOUT_SECONDS": "0.2",
        "KINESIS_READ_TIMEOUT_SECONDS": "0.3",
        "PUBLISH_MARGIN_SECONDS": "0.2",
    }
    event = kinesis_event(payloads(4))
    timeout = 2.5

    with endpoint_that(serve) as (endpoint, connections):
        use_endpoint(monkeypatch, endpoint)
        function = prediction_function(Settings.from_env(settings))
        started = time.monotonic()
        response = function(event, RealTimeContext(timeout))
        took = time.monotonic() - started

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["kinesis"]["sequenceNumber"]}]}
    assert took < timeout, f"answered after {took:.2f} s, past the {timeout} s timeout"
    assert len(connections) >= 3, "it gave each call up and tried again until the deadline"


def test_an_invocation_with_no_time_for_one_call_fails_naming_the_settings_instead_of_publishing_nothing(
    build_function, kinesis
):
    function = build_function("prediction", KINESIS_READ_TIMEOUT_SECONDS="30")

    with pytest.raises(InvalidSetting, match=r"PUBLISH_MARGIN_SECONDS \(1 s\) and one PutRecords call \(32 s"):
        function(kinesis_event(payloads(4)), RealTimeContext(20))
    assert read_events(kinesis, PREDICTIONS) == read_events(kinesis, DEAD_LETTERS) == []
