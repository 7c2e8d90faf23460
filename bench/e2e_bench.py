"""End-to-end figures of the deployed stack on the local LocalStack: latency, throughput, and a second consumer's cost.

    .venv/bin/python -m bench.e2e_bench [--latency-rides 300] [--rate 20] [--burst 3000] [--param K=V ...]

Measures twice, side by side in this run, each time on a fresh Docker-free
LocalStack on a free port with a duration and a cost model trained on
generated trips and template.yaml deployed with its default parameters: with
both consumers of the ride stream (duration and cost), then with the cost
consumer's event source mapping disabled before any ride is sent (duration
alone). A fresh stack for each keeps the second from inheriting the first's
backlog: LocalStack's one Kinesis engine, after a burst read by two mappings
and one of them disabled, stopped answering PutRecords here.

- latency: rides put at a steady rate, one by one timed from the return of
  their PutRecords call to the moment a tail polling the predictions stream
  every 50 ms (and one on the decisions stream) first reads each consumer's
  event;
- sustained: a burst put as fast as the producer can, timed until the last of
  its predictions is read (the tail then polls every 250 ms, so that reading
  does not compete with the stack for the machine's two cores).

``--param`` overrides a template parameter, e.g. ``PredictionBatchSize=500``,
to see what a setting is worth.

The figures are the local stack's (one shard, LocalStack's event source
mapping, functions as local processes on a 2-core machine), not AWS's; they
show where the time goes, and catch a regression in the path. On AWS each
consumer has its own execution environments, so what the second consumer
costs here in CPU on two cores it costs there in money, not in latency.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from bench.common import cost_model, generated_pipeline, save_mlflow_model
from local_stack import aws as local_aws
from local_stack.server import free_port
from model_service.config import Settings
from model_service.kinesis.publish import KinesisPublisher, kinesis_client
from model_service.kinesis.read import StreamTail, reading_client
from model_service.sample_data import make_trips
from stream_tools.producer import produce, rides_from_trips, with_malformed

STACK_NAME = "ride-duration-e2e-bench"
LATENCY_POLL_SECONDS = 0.05
BURST_POLL_SECONDS = 0.25
WAIT_SECONDS = 180
PUT_RETRY_SECONDS = 120


class FirstSeen(threading.Thread):
    """Polls a stream every ``interval`` seconds and keeps the time each event's key was first read."""

    def __init__(self, stream: str, key_of) -> None:
        super().__init__(daemon=True)
        self.tail = StreamTail(reading_client(), stream)
        self.key_of = key_of
        self.interval = LATENCY_POLL_SECONDS
        self.seen: dict[str, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                events = self.tail.events()
            except (BotoCoreError, ClientError):  # LocalStack's Kinesis busy under a burst: read again next poll
                events = []
            now = time.monotonic()
            for event in events:
                self.seen.setdefault(str(self.key_of(event)), now)
            time.sleep(self.interval)

    def wait_for(self, keys: list[str], timeout: float = WAIT_SECONDS) -> float:
        """The time the last of ``keys`` was seen; fails naming how many never came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(k in self.seen for k in keys):
                return max(self.seen[k] for k in keys)
            time.sleep(LATENCY_POLL_SECONDS)
        missing = sum(k not in self.seen for k in keys)
        raise TimeoutError(f"{missing} of {len(keys)} events never came out on {self.tail.stream_name}")


def send(stream: str, count: int, prefix: str, rate: float | None) -> tuple[dict[str, float], float]:
    """Put ``count`` valid rides; return each one's put time and the seconds the whole put took."""
    put_at: dict[str, float] = {}

    def stamp(report, chunk) -> None:
        now = time.monotonic()
        put_at.update((str(r.ride_id), now) for r in chunk)

    records = with_malformed(rides_from_trips(make_trips(count, seed=len(prefix)), id_prefix=prefix), 0)
    publisher = KinesisPublisher(kinesis_client(Settings.from_env()), stream)
    # Patient: under a burst, LocalStack's one Kinesis engine answers the stack's own reads and writes first.
    report = produce(publisher, records, rate=rate, on_chunk=stamp, retry_seconds=PUT_RETRY_SECONDS)
    if report.failed:
        raise RuntimeError(f"{report.failed} rides could not be put")
    return put_at, report.seconds


def keyed(consumer: str, ride_ids) -> list[str]:
    return [f"{consumer}:{r}" for r in ride_ids]


def consumer_key(event: dict) -> str:
    """A prediction's consumer (the end of its event_id) and ride: each consumer's event is timed on its own."""
    return f"{event.get('event_id', '').rpartition('/')[2]}:{event.get('prediction', {}).get('ride_id')}"


def decision_key(event: dict) -> str:
    return f"{event.get('prediction_event_id', '').rpartition('/')[2]}:{event.get('ride_id')}"


@dataclass
class Phase:
    """One configuration's figures: latency to each consumer's event and its decision, and a burst's throughput."""

    to_prediction: dict[str, list[float]]
    to_decision: dict[str, list[float]]
    put_seconds: float
    burst_seconds: float


def measure(stack, consumers: tuple[str, ...], args: argparse.Namespace, label: str) -> Phase:
    predictions = FirstSeen(stack.predictions_stream, consumer_key)
    decisions = FirstSeen(stack.decisions_stream, decision_key)
    predictions.start()
    decisions.start()
    try:
        warm_put, _ = send(stack.input_stream, 5, f"warm-{label}-", rate=None)
        for consumer in consumers:
            predictions.wait_for(keyed(consumer, warm_put))

        put_at, _ = send(stack.input_stream, args.latency_rides, f"lat-{label}-", rate=args.rate)
        to_prediction, to_decision = {}, {}
        for consumer in consumers:
            predictions.wait_for(keyed(consumer, put_at))
            decisions.wait_for(keyed(consumer, put_at))
            to_prediction[consumer] = [predictions.seen[f"{consumer}:{r}"] - t for r, t in put_at.items()]
            to_decision[consumer] = [decisions.seen[f"{consumer}:{r}"] - t for r, t in put_at.items()]

        decisions.stopping.set()
        predictions.interval = BURST_POLL_SECONDS
        burst_started = time.monotonic()
        burst_put, put_seconds = send(stack.input_stream, args.burst, f"burst-{label}-", rate=None)
        done = max(predictions.wait_for(keyed(consumer, burst_put)) for consumer in consumers)
        return Phase(to_prediction, to_decision, put_seconds, done - burst_started)
    finally:
        predictions.stopping.set()
        decisions.stopping.set()


def disable_event_source(clients, function: str) -> None:
    lam = clients("lambda")
    (mapping,) = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    local_aws.wait_until(
        lambda: lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled",
        60,
        f"{function}'s event source mapping to stop",
    )


def measure_on_fresh_stack(
    consumers: tuple[str, ...], args: argparse.Namespace, parameters: dict[str, str], label: str
) -> Phase:
    """Start LocalStack, deploy the stack, keep only ``consumers`` reading the ride stream, measure, stop."""
    with tempfile.TemporaryDirectory() as tmp, local_aws.running_localstack(free_port()) as localstack:
        os.environ.update(local_aws.client_environment(localstack.endpoint))
        clients = local_aws.Clients(localstack.endpoint)
        local_aws.upload_model(clients, save_mlflow_model(generated_pipeline(), Path(tmp) / "model"), "ride-duration")
        local_aws.upload_model(clients, cost_model(Path(tmp)), "ride-cost")
        deployed_at = time.monotonic()
        stack = local_aws.deploy(clients, STACK_NAME, parameters)
        print(f"[{label}] deployed template.yaml in {time.monotonic() - deployed_at:.1f} s", flush=True)
        if "cost" not in consumers:
            disable_event_source(clients, stack.cost_function)
        phase = measure(stack, consumers, args, label)
        print(f"[{label}] measured: {', '.join(consumers)}", flush=True)
        return phase


def percentiles(seconds: list[float]) -> str:
    p50, p95 = np.percentile(seconds, [50, 95])
    return f"p50 {p50 * 1000:6.0f} ms   p95 {p95 * 1000:6.0f} ms   max {max(seconds) * 1000:6.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-rides", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="rides/s of the latency run")
    parser.add_argument("--burst", type=int, default=3000, help="rides of the throughput run")
    parser.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="template parameter override (repeatable)"
    )
    args = parser.parse_args()
    parameters = dict(p.split("=", 1) for p in args.param)

    both = measure_on_fresh_stack(("duration", "cost"), args, parameters, "both")
    alone = measure_on_fresh_stack(("duration",), args, parameters, "alone")
    print()
    overrides = ", ".join(args.param) or "none"
    print("local stack: one shard per stream, functions as local processes (local_stack/lambda_local_executor)")
    print(f"template parameters overridden: {overrides}; LocalStack polls each shard once a second")
    print(f"\nlatency, {args.latency_rides} rides at {args.rate:g} rides/s, tails polling every 50 ms:")
    for name, phase in (("duration and cost consumers", both), ("duration consumer alone", alone)):
        print(f"  {name}:")
        for consumer, seconds in phase.to_prediction.items():
            print(f"    put -> {consumer + ' prediction read':<26} {percentiles(seconds)}")
            print(f"    put -> {consumer + ' decision read':<26} {percentiles(phase.to_decision[consumer])}")
    print(f"\nsustained, a burst of {args.burst:,} rides put as fast as possible:")
    for name, phase in (("both consumers", both), ("duration alone", alone)):
        rate = args.burst / phase.burst_seconds
        print(
            f"  {name:<16} put in {phase.put_seconds:5.2f} s; every consumer's predictions read after"
            f" {phase.burst_seconds:6.2f} s ({rate:7,.0f} rides/s end to end)"
        )
    p50 = {
        name: float(np.percentile(p.to_prediction["duration"], 50)) for name, p in (("both", both), ("alone", alone))
    }
    print(
        f"\nthe second consumer's cost on this machine: duration p50 {1000 * (p50['both'] - p50['alone']):+.0f} ms,"
        f" burst {both.burst_seconds / alone.burst_seconds:.2f}x the time for twice the predictions"
    )


if __name__ == "__main__":
    main()
