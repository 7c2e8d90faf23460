"""End-to-end figures of the deployed stack on the local LocalStack: latency and sustained throughput.

    .venv/bin/python -m bench.e2e_bench [--latency-rides 300] [--rate 20] [--burst 3000] [--param K=V ...]

Starts its own Docker-free LocalStack on a free port, uploads a model trained
on generated trips, deploys template.yaml with its default parameters, then:

- latency: rides put at a steady rate, one by one timed from the return of
  their PutRecords call to the moment a tail polling the predictions stream
  every 50 ms (and one on the decisions stream) first reads their event;
- sustained: a burst put as fast as the producer can, timed until the last of
  its predictions is read (the tail then polls every 250 ms, so that reading
  does not compete with the stack for the machine's two cores).

``--param`` overrides a template parameter, e.g. ``PredictionBatchSize=500``,
to see what a setting is worth.

The figures are the local stack's (one shard, LocalStack's event source
mapping, functions as local processes on a 2-core machine), not AWS's; they
show where the time goes, and catch a regression in the path.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import generated_pipeline, save_mlflow_model
from local_stack import aws as local_aws
from local_stack.server import free_port
from model_service.config import Settings
from model_service.kinesis.publish import KinesisPublisher, kinesis_client
from model_service.sample_data import make_trips
from stream_tools.producer import produce, rides_from_trips, with_malformed
from stream_tools.tail import StreamTail, reading_client

STACK_NAME = "ride-duration-e2e-bench"
LATENCY_POLL_SECONDS = 0.05
BURST_POLL_SECONDS = 0.25
WAIT_SECONDS = 120


class FirstSeen(threading.Thread):
    """Polls a stream every ``interval`` seconds and keeps the time each ride_id's event was first read."""

    def __init__(self, stream: str, ride_id_of) -> None:
        super().__init__(daemon=True)
        self.tail = StreamTail(reading_client(), stream)
        self.ride_id_of = ride_id_of
        self.interval = LATENCY_POLL_SECONDS
        self.seen: dict[str, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            events = self.tail.events()
            now = time.monotonic()
            for event in events:
                self.seen.setdefault(str(self.ride_id_of(event)), now)
            time.sleep(self.interval)

    def wait_for(self, ride_ids: list[str], timeout: float = WAIT_SECONDS) -> float:
        """Seconds until every one of ``ride_ids`` was seen; fails naming how many never came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(r in self.seen for r in ride_ids):
                return max(self.seen[r] for r in ride_ids)
            time.sleep(LATENCY_POLL_SECONDS)
        missing = sum(r not in self.seen for r in ride_ids)
        raise TimeoutError(f"{missing} of {len(ride_ids)} rides never came out on {self.tail.stream_name}")


def send(stream: str, count: int, prefix: str, rate: float | None) -> tuple[dict[str, float], float]:
    """Put ``count`` valid rides; return each one's put time and the seconds the whole put took."""
    put_at: dict[str, float] = {}

    def stamp(report, chunk) -> None:
        now = time.monotonic()
        put_at.update((str(r.ride_id), now) for r in chunk)

    records = with_malformed(rides_from_trips(make_trips(count, seed=len(prefix)), id_prefix=prefix), 0)
    report = produce(KinesisPublisher(kinesis_client(Settings.from_env()), stream), records, rate=rate, on_chunk=stamp)
    if report.failed:
        raise RuntimeError(f"{report.failed} rides could not be put")
    return put_at, report.seconds


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

    with tempfile.TemporaryDirectory() as tmp, local_aws.running_localstack(free_port()) as localstack:
        os.environ.update(local_aws.client_environment(localstack.endpoint))
        clients = local_aws.Clients(localstack.endpoint)
        local_aws.upload_model(clients, save_mlflow_model(generated_pipeline(), Path(tmp) / "model"))
        deployed_at = time.monotonic()
        stack = local_aws.deploy(clients, STACK_NAME, parameters)
        print(f"deployed template.yaml in {time.monotonic() - deployed_at:.1f} s", flush=True)

        predictions = FirstSeen(stack.predictions_stream, lambda e: e.get("prediction", {}).get("ride_id"))
        decisions = FirstSeen(stack.decisions_stream, lambda e: e.get("ride_id"))
        predictions.start()
        decisions.start()

        warm_put, _ = send(stack.input_stream, 5, "warm-", rate=None)
        cold = predictions.wait_for(list(warm_put)) - min(warm_put.values())
        print(f"first predictions after deploy: {cold:.1f} s (function start + model load from S3)", flush=True)

        put_at, _ = send(stack.input_stream, args.latency_rides, "lat-", rate=args.rate)
        predictions.wait_for(list(put_at))
        decisions.wait_for(list(put_at))
        to_prediction = [predictions.seen[r] - t for r, t in put_at.items()]
        to_decision = [decisions.seen[r] - t for r, t in put_at.items()]

        decisions.stopping.set()
        predictions.interval = BURST_POLL_SECONDS
        burst_started = time.monotonic()
        burst_put, put_seconds = send(stack.input_stream, args.burst, "burst-", rate=None)
        burst_seconds = predictions.wait_for(list(burst_put)) - burst_started
        predictions.stopping.set()

    print()
    overrides = ", ".join(args.param) or "none"
    print("local stack: one shard per stream, functions as local processes (local_stack/lambda_local_executor)")
    print(f"template parameters overridden: {overrides}; LocalStack polls each shard once a second")
    print(f"\nlatency, {args.latency_rides} rides at {args.rate:g} rides/s, tails polling every 50 ms:")
    print(f"  put -> prediction read   {percentiles(to_prediction)}")
    print(f"  put -> decision read     {percentiles(to_decision)}")
    print(f"\nsustained, a burst of {args.burst:,} rides put as fast as possible:")
    print(f"  put in                   {put_seconds:6.2f} s   ({args.burst / put_seconds:8,.0f} rides/s into Kinesis)")
    print(
        f"  all predicted after      {burst_seconds:6.2f} s   ({args.burst / burst_seconds:8,.0f} rides/s end to end)"
    )


if __name__ == "__main__":
    main()
