"""The local demo: train the model if there is none, then stream rides through the functions.

``make demo`` (``local``): starts the Docker-free LocalStack, copies the model
from MLflow to S3, deploys template.yaml, sends a stream of rides (some
malformed) to the input stream, shows the predictions, decisions and dead
letters as they arrive, checks that every ride sent is accounted for and stops
LocalStack, also on Ctrl-C.

``make demo-offline`` (``offline``) needs no AWS at all: the course's sample
Kinesis event and a few malformed records go through
``lambda_function.lambda_handler`` in TEST_RUN mode, and the prediction and
dead-letter events are printed.

Whatever the demo writes (generated trips, the MLflow store, the model's URI)
goes under ``--workdir``, the project root by default.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream_tools.producer import ProduceReport, RideRecord

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DATA = Path("data")
MODEL_URI_FILE = Path("artifacts") / "MODEL_URI"
"""Relative to the working directory, which ``main`` sets to --workdir."""
STACK_NAME = "ride-duration-demo"
SHOWN_PREDICTIONS = 10
"""Predictions printed one a line; the rest only count, so the view stays readable at any --rides."""


def trip_months() -> tuple[Path, Path]:
    """January and February 2021: the TLC files from ../shared, or generated look-alikes."""
    from model_service.sample_data import training_months

    return training_months(SHARED_DATA, DATA)


def ensure_model() -> str:
    """The MODEL_URI of the last model trained here, training one first if there is none."""
    if MODEL_URI_FILE.exists():
        return MODEL_URI_FILE.read_text().strip()
    train, val = trip_months()
    print(f"training on {train.name}, validating on {val.name} ...", flush=True)
    out = subprocess.run(
        [sys.executable, "-m", "model_service", "train", "--train", str(train), "--val", str(val)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(out, end="")
    uri = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("MODEL_URI="))
    MODEL_URI_FILE.parent.mkdir(exist_ok=True)
    MODEL_URI_FILE.write_text(uri + "\n")
    return uri


def offline(model_uri: str) -> None:
    os.environ.update({"MODEL_URI": model_uri, "TEST_RUN": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"})
    import lambda_function
    from stream_tools.local_invoke import LocalContext, kinesis_event

    rides = [
        {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 256},
        {"ride": {"PULocationID": 10, "DOLocationID": 50, "trip_distance": 40}, "ride_id": 257},
        {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": -1}, "ride_id": 258},
        "this is not JSON",
    ]
    payloads = (ride.encode() if isinstance(ride, str) else json.dumps(ride).encode() for ride in rides)
    response = lambda_function.lambda_handler(kinesis_event(payloads), LocalContext())
    print(f"\nmodel {model_uri} (version {lambda_function.lambda_handler.service.version})")
    for event in response["predictions"]:
        print(f"  prediction  ride {event['prediction']['ride_id']}: {event['prediction']['ride_duration']:.2f} min")
    for event in response["dead_letters"]:
        print(f"  dead letter seq ...{event['source']['sequence_number'][-4:]}: {event['reason']}")


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


@dataclass
class Outputs:
    """The output streams' events by event_id: at-least-once delivery may repeat one, it counts once."""

    predictions: dict[str, dict] = field(default_factory=dict)
    decisions: dict[str, dict] = field(default_factory=dict)
    dead_letters: dict[str, dict] = field(default_factory=dict)

    @property
    def long_rides(self) -> int:
        return sum(d.get("decision") == "long_ride" for d in self.decisions.values())


class LiveView:
    """Reads the three output streams; prints the events worth a line and a progress line a second."""

    def __init__(self, kinesis: Any, stack: Any, rides: dict[Any, dict], total: int) -> None:
        from stream_tools.tail import StreamTail

        self.tails = {
            "predictions": StreamTail(kinesis, stack.predictions_stream),
            "decisions": StreamTail(kinesis, stack.decisions_stream),
            "dead_letters": StreamTail(kinesis, stack.dead_letter_stream),
        }
        self.rides = rides
        self.total = total
        self.outputs = Outputs()
        self.started = time.monotonic()
        self._progress_at = self.started

    def poll(self, sent: int) -> None:
        for name, tail in self.tails.items():
            seen = getattr(self.outputs, name)
            for event in tail.events():
                key = event.get("event_id") or json.dumps(event, sort_keys=True)
                if key not in seen:
                    seen[key] = event
                    self._show(name, event, len(seen))
        if time.monotonic() - self._progress_at >= 1:
            self._progress_at = time.monotonic()
            self.progress(sent)

    def progress(self, sent: int) -> None:
        out = self.outputs
        print(
            f"[{time.monotonic() - self.started:4.0f} s] sent {sent:4d}/{self.total}"
            f" | predictions {len(out.predictions):4d} | decisions {len(out.decisions):4d}"
            f" | dead letters {len(out.dead_letters):3d}",
            flush=True,
        )

    def _show(self, name: str, event: dict, count: int) -> None:
        if name == "predictions" and count <= SHOWN_PREDICTIONS:
            ride_id = event["prediction"]["ride_id"]
            ride = self.rides.get(ride_id, {}).get("ride", {})
            trip = f"{ride.get('PULocationID')!s:>3} -> {ride.get('DOLocationID')!s:<3}"
            distance, minutes = ride.get("trip_distance", 0), event["prediction"]["ride_duration"]
            print(f"  prediction   ride {ride_id!s:<11} {trip} {distance:6.2f} mi {minutes:6.1f} min")
            if count == SHOWN_PREDICTIONS:
                print("  (further predictions are counted, not shown)")
        elif name == "decisions" and event.get("decision") == "long_ride":
            minutes = event["predicted_duration"]
            print(f"  decision     ride {event['ride_id']!s:<11} long_ride, predicted {minutes:.1f} min")
        elif name == "dead_letters":
            print(f"  dead letter  {event.get('stage')}: {event.get('reason', '')[:100]}")


class Producer(threading.Thread):
    """Puts the rides on the input stream at the chosen rate while the main thread shows the outputs."""

    def __init__(self, stream: str, records: list, rate: float) -> None:
        super().__init__(name="producer", daemon=True)
        self.stream = stream
        self.records = records
        self.rate = rate
        self.sent = 0
        self.report: ProduceReport | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        from model_service.config import Settings
        from model_service.kinesis.publish import KinesisPublisher, kinesis_client
        from stream_tools.producer import produce

        def count(report: ProduceReport, chunk: list[RideRecord]) -> None:
            self.sent = report.sent

        publisher = KinesisPublisher(kinesis_client(Settings.from_env()), self.stream)
        self.report = produce(publisher, self.records, rate=self.rate, on_chunk=count, stop=self.stopping.is_set)


def stream_rides(args: argparse.Namespace, local_aws: Any, endpoint: str, model_uri: str) -> int:
    from local_stack.deploy import publish_model
    from stream_tools.producer import rides_from_parquet, with_malformed

    clients = local_aws.Clients(endpoint)
    model = publish_model(clients, model_uri)
    say(f"model {model_uri} resolved to version {model.version} ({model.description}), uploaded to {model.model_uri}")
    deploy_started = time.monotonic()
    stack = local_aws.deploy(clients, STACK_NAME, {"ModelUri": model.model_uri, "ModelVersion": model.version})
    say(
        f"deployed template.yaml as {STACK_NAME} in {time.monotonic() - deploy_started:.0f} s:"
        f" {stack.input_stream} -> prediction function -> {stack.predictions_stream} -> decision function"
        f" -> {stack.decisions_stream}; rejected records -> {stack.dead_letter_stream}"
    )

    source = trip_months()[1]
    rides = list(islice(rides_from_parquet(source), args.rides))
    records = list(with_malformed(rides, args.malformed_fraction))
    malformed = sum(r.malformed is not None for r in records)
    say(f"sending {len(records)} rides from {source.name} at {args.rate:g} rides/s, {malformed} of them malformed")
    say("the first predictions wait for the prediction function to start and load the model (a few seconds)")
    view = LiveView(clients("kinesis"), stack, {r["ride_id"]: r for r in rides}, len(records))
    producer = Producer(stack.input_stream, records, args.rate)
    producer.start()
    try:
        while producer.is_alive():
            view.poll(producer.sent)
            time.sleep(0.2)
        deadline = time.monotonic() + args.wait
        while producer.report and not accounted(view.outputs, producer.report.sent) and time.monotonic() < deadline:
            view.poll(producer.sent)
            time.sleep(0.2)
    finally:
        producer.stopping.set()
        producer.join(timeout=10)  # its last PutRecords call, before LocalStack goes away under it
    if producer.report is None:
        say("FAILED: the producer stopped with an error (above)")
        return 1
    return summary(view.outputs, producer.report, time.monotonic() - view.started)


def accounted(outputs: Outputs, sent: int) -> bool:
    """Every ride sent is a prediction or a dead letter, and every prediction has its decision."""
    predicted = len(outputs.predictions)
    return predicted + len(outputs.dead_letters) >= sent and len(outputs.decisions) >= predicted


def summary(outputs: Outputs, report: Any, seconds: float) -> int:
    predictions, dead_letters, decisions = len(outputs.predictions), len(outputs.dead_letters), len(outputs.decisions)
    malformed = sum(report.malformed.values())
    say(
        f"sent {report.sent} rides ({malformed} malformed, {report.failed} could not be put,"
        f" {report.retried} re-sent after throttling) at {report.rides_per_second:.1f} rides/s"
    )
    say(
        f"out: {predictions} predictions, {dead_letters} dead letters ({malformed} malformed sent,"
        f" {dead_letters - malformed} real rides outside the schema), {decisions} decisions"
        f" ({outputs.long_rides} long_ride)"
    )
    if predictions + dead_letters == report.sent and decisions == predictions and not report.failed:
        say(
            f"OK: all {report.sent} rides accounted for in {seconds:.0f} s"
            f" ({predictions} predictions + {dead_letters} dead letters), each prediction decided"
        )
        return 0
    say(
        f"FAILED: {report.sent} rides sent, {predictions + dead_letters} accounted for"
        f" ({predictions} predictions + {dead_letters} dead letters), {decisions} of {predictions} decided"
    )
    return 1


@contextmanager
def demo_localstack(port: int) -> Iterator[Any]:
    """LocalStack, stopped however the demo ends; a second Ctrl-C must not cut its shutdown short."""
    from local_stack import aws as local_aws

    started = time.monotonic()
    with local_aws.running_localstack(port) as localstack:
        log = os.path.relpath(localstack.log_path, ROOT)
        say(f"LocalStack up at {localstack.endpoint} in {time.monotonic() - started:.1f} s (log: {log})")
        try:
            yield localstack
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            say("stopping LocalStack ...")
    say("LocalStack stopped")


def local(args: argparse.Namespace) -> int:
    """Start LocalStack, train if needed, deploy, stream rides through the stack."""
    from local_stack import aws as local_aws
    from local_stack.server import LocalStackError

    try:
        with demo_localstack(args.port) as localstack:
            os.environ.update(local_aws.client_environment(localstack.endpoint))
            return stream_rides(args, local_aws, localstack.endpoint, ensure_model())
    except LocalStackError as exc:  # raised only by the start: the port is taken, or LocalStack does not come up
        print(f"error: {exc}", file=sys.stderr)
        return 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("local", "offline", "train"))
    parser.add_argument("--workdir", type=Path, default=ROOT, help="where data/, artifacts/ and mlflow.db live")
    local_options = parser.add_argument_group("local mode")
    local_options.add_argument("--rides", type=int, default=200, help="rides to send (default 200)")
    local_options.add_argument("--rate", type=float, default=20.0, help="rides per second (default 20)")
    local_options.add_argument("--malformed-fraction", type=float, default=0.05, help="share corrupted (default 0.05)")
    local_options.add_argument("--port", type=int, default=4566, help="LocalStack's port (default 4566)")
    local_options.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for the last outputs once all is sent"
    )
    args = parser.parse_args(argv)
    if args.rides < 1 or args.rate <= 0 or not 0 <= args.malformed_fraction <= 1:
        parser.error("--rides and --rate must be positive, --malformed-fraction between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(args.workdir)
    # SIGTERM (a CI job cancelled, `kill`) cleans up exactly as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.mode == "local":
        try:
            return local(args)
        except KeyboardInterrupt:
            say("interrupted; LocalStack was stopped")
            return 130
    model_uri = ensure_model()
    if args.mode == "offline":
        offline(model_uri)
    else:
        print(f"MODEL_URI={model_uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
