"""The local demo: train the models if there are none, then stream rides through the functions.

``make demo`` (``local``): starts the Docker-free LocalStack, copies the
duration and cost models from MLflow to S3, deploys template.yaml (a consumer
of the ride stream per model, and the decision function), sends a stream of
rides (some malformed) to the input stream, shows the predictions, decisions
and dead letters as they arrive, checks that every ride sent is accounted for
by each consumer and stops LocalStack, also on Ctrl-C.

``make demo-cycle`` (``cycle``) walks a model change on the local stack:
see scripts/model_cycle.py.

``make demo-offline`` (``offline``) needs no AWS at all: the course's sample
Kinesis event and a few malformed records go through the prediction function
of each model in TEST_RUN mode, and the prediction and dead-letter events are
printed.

The models served are the registry's champions (``models:/ride-duration@champion``,
``models:/ride-cost@champion``, pinned to their versions when the demo starts):
the ones the demo trained, or ones trained with ``python -m model_service train``
(a model's first version becomes its champion), or promoted since. Training
runs only for a model that has no champion.

Whatever the demo writes (the two training months in data/, where batch
scoring looks for them, and the MLflow store) goes under ``--workdir``, the
project root by default.
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
"""Relative to the working directory, which ``main`` sets to --workdir: where BATCH_INPUT_TEMPLATE looks by default."""
STACK_NAME = "ride-duration-demo"
SHOWN_PREDICTIONS = 10
"""Predictions printed one a line; the rest only count, so the view stays readable at any --rides."""


def trip_months() -> tuple[Path, Path]:
    """January and February 2021: the TLC files from ../shared, or generated look-alikes."""
    from model_service.sample_data import training_months

    return training_months(SHARED_DATA, DATA)


def tracking_uri() -> str:
    """The MLflow store the demo trains into and serves from: MLFLOW_TRACKING_URI, else the local one."""
    from model_service.config import Settings

    return Settings.from_env().tracking_uri


def champions(tracking: str) -> dict[str, str | None]:
    """Each model the demo serves (duration, cost) by registered name: its champion's version, None if it has none."""
    from mlflow import MlflowClient

    from model_service.model.aliases import CHAMPION, alias_version
    from model_service.model.training import RECIPES

    client = MlflowClient(tracking)
    return {
        recipe.registered_name: alias_version(client, recipe.registered_name, CHAMPION) for recipe in RECIPES.values()
    }


def served(versions: dict[str, str | None]) -> list[str]:
    """The champions pinned to their versions, as MODEL_URIS: what is deployed, whatever moves the alias later."""
    return [f"models:/{name}/{version}" for name, version in versions.items()]


def store_file(tracking: str) -> str | None:
    """The file a ``sqlite:///`` tracking URI keeps the registry in, None for any other store."""
    return tracking.removeprefix("sqlite:///") if tracking.startswith("sqlite:///") else None


def ensure_models() -> list[str]:
    """The models to serve: each model's champion, training the models that have none first.

    Returns them pinned to their versions (``models:/ride-duration/3``), duration first.
    """
    from model_service.model.training import RECIPES_BY_NAME

    train, val = trip_months()  # in data/ either way, where batch scoring looks for its months
    tracking = tracking_uri()
    versions = champions(tracking)
    if all(versions.values()):
        store = store_file(tracking)
        again = f"delete {store} to train again" if store else f"their champions in {tracking}; promote to change them"
        train_say(f"models trained earlier are kept: {','.join(served(versions))} ({again})")
        return served(versions)
    missing = [name for name, version in versions.items() if version is None]
    train_say(f"training {', '.join(missing)} on {train.name}, validating on {val.name} ...")
    targets = [argument for name in missing for argument in ("--target", RECIPES_BY_NAME[name].target.name)]
    training = subprocess.run(
        [sys.executable, "-m", "model_service", "train", "--train", str(train), "--val", str(val), *targets],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        capture_output=True,
        text=True,
    )
    # Each model's URI once: its own line (DURATION_MODEL_URI=...), not the MODEL_URIS line that repeats them.
    lines = training.stdout.splitlines(keepends=True)
    print("".join(line for line in lines if not line.startswith("MODEL_URIS=")), end="", flush=True)
    if training.returncode:
        sys.stderr.write(training.stderr)
        raise SystemExit(f"[train] training failed with status {training.returncode} (its errors above)")
    versions = champions(tracking)
    unserved = [name for name, version in versions.items() if version is None]
    if unserved:
        raise RuntimeError(f"training gave {', '.join(unserved)} no champion; see its output above")
    train_say(f"the demo will serve {','.join(served(versions))} (the registry's champions)")
    return served(versions)


def train_say(message: str) -> None:
    print(f"[train] {message}", flush=True)


def offline(model_uris: list[str]) -> None:
    """The course's sample ride, a long ride and two malformed records through each model's prediction function."""
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    from model_service.config import Settings
    from model_service.kinesis.function import prediction_function
    from stream_tools.local_invoke import LocalContext, kinesis_event

    rides = [
        {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 256},
        {"ride": {"PULocationID": 10, "DOLocationID": 50, "trip_distance": 40}, "ride_id": 257},
        {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": -1}, "ride_id": 258},
        "this is not JSON",
    ]
    payloads = [ride.encode() if isinstance(ride, str) else json.dumps(ride).encode() for ride in rides]
    for model_uri in model_uris:
        function = prediction_function(Settings.from_env({**os.environ, "MODEL_URI": model_uri, "TEST_RUN": "true"}))
        target = function.service.target
        response = function(kinesis_event(payloads), LocalContext())
        print(f"\n{target.name} model {model_uri} (version {function.service.version})")
        for event in response["predictions"]:
            value = event["prediction"][target.event_field]
            print(f"  prediction  ride {event['prediction']['ride_id']}: {value:.2f} {target.unit}")
        for event in response["dead_letters"]:
            print(f"  dead letter seq ...{event['source']['sequence_number'][-4:]}: {event['reason']}")


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


CONSUMERS = ("duration", "cost")
"""The consumers of the ride stream that template.yaml deploys, one per model."""
FLAGS = {"long_ride": "duration", "costly_ride": "cost"}
"""The decisions worth a line, and the model whose prediction they flag."""


def consumer_of(event: dict) -> str:
    """The consumer that published a prediction or a dead letter: the last part of its event_id."""
    return str(event.get("consumer") or event.get("event_id", "").rpartition("/")[2])


@dataclass
class Outputs:
    """The output streams' events by event_id: at-least-once delivery may repeat one, it counts once."""

    predictions: dict[str, dict] = field(default_factory=dict)
    decisions: dict[str, dict] = field(default_factory=dict)
    dead_letters: dict[str, dict] = field(default_factory=dict)

    def of(self, consumer: str) -> tuple[int, int]:
        """A consumer's predictions and dead letters."""
        return (
            sum(consumer_of(e) == consumer for e in self.predictions.values()),
            sum(consumer_of(e) == consumer for e in self.dead_letters.values()),
        )

    def decided(self, decision: str) -> int:
        return sum(d.get("decision") == decision for d in self.decisions.values())


class LiveView:
    """Reads the three output streams; prints the events worth a line and a progress line a second."""

    def __init__(self, kinesis: Any, stack: Any, rides: dict[Any, dict], total: int) -> None:
        from model_service.kinesis.read import StreamTail

        self.tails = {
            "predictions": StreamTail(kinesis, stack.predictions_stream),
            "decisions": StreamTail(kinesis, stack.decisions_stream),
            "dead_letters": StreamTail(kinesis, stack.dead_letter_stream),
        }
        self.rides = rides
        self.total = total
        self.outputs = Outputs()
        self.shown: dict[Any, dict[str, float]] = {}
        self.started = time.monotonic()
        self._progress_at = self.started

    def poll(self, sent: int) -> None:
        for name, tail in self.tails.items():
            seen = getattr(self.outputs, name)
            for event in tail.events():
                key = event.get("event_id") or json.dumps(event, sort_keys=True)
                if key not in seen:
                    seen[key] = event
                    self._show(name, event)
        if time.monotonic() - self._progress_at >= 1:
            self._progress_at = time.monotonic()
            self.progress(sent)

    def progress(self, sent: int) -> None:
        out = self.outputs
        consumers = " | ".join(f"{c} {out.of(c)[0]:4d}" for c in CONSUMERS)
        print(
            f"[{time.monotonic() - self.started:4.0f} s] sent {sent:4d}/{self.total} | {consumers}"
            f" | decisions {len(out.decisions):4d} | dead letters {len(out.dead_letters):3d}",
            flush=True,
        )

    def _show(self, name: str, event: dict) -> None:
        if name == "predictions":
            self._show_prediction(event)
        elif name == "decisions" and event.get("decision") in FLAGS:
            flagged = FLAGS[event["decision"]]
            value = event.get(f"predicted_{flagged}", 0.0)
            unit = "min" if flagged == "duration" else "USD"
            print(f"  decision     ride {event['ride_id']!s:<11} {event['decision']}, predicted {value:.1f} {unit}")
        elif name == "dead_letters" and consumer_of(event) == CONSUMERS[0]:  # each consumer refuses the same records
            print(f"  dead letter  {event.get('stage')}: {event.get('reason', '')[:100]}")

    def _show_prediction(self, event: dict) -> None:
        """A ride's line once both its duration and its cost arrived, for the first rides."""
        prediction = event["prediction"]
        ride_id = prediction["ride_id"]
        if ride_id not in self.shown and len(self.shown) >= SHOWN_PREDICTIONS:
            return
        values = self.shown.setdefault(ride_id, {})
        values.update({k: v for k, v in prediction.items() if k != "ride_id"})
        if {"ride_duration", "ride_cost"} <= set(values) and "shown" not in values:
            values["shown"] = 1
            ride = self.rides.get(ride_id, {}).get("ride", {})
            trip = f"{ride.get('PULocationID')!s:>3} -> {ride.get('DOLocationID')!s:<3}"
            distance = ride.get("trip_distance", 0)
            print(
                f"  prediction   ride {ride_id!s:<11} {trip} {distance:6.2f} mi"
                f" {values['ride_duration']:6.1f} min {values['ride_cost']:7.2f} USD"
            )
            if sum("shown" in v for v in self.shown.values()) == SHOWN_PREDICTIONS:
                print("  (further predictions are counted, not shown)")


class Producer(threading.Thread):
    """Puts the rides on the input stream at the chosen rate while the main thread shows the outputs."""

    def __init__(self, stream: str, records: list, rate: float) -> None:
        super().__init__(name="producer", daemon=True)
        self.stream = stream
        self.records = records
        self.rate = rate
        self.sent = 0
        self.report: ProduceReport | None = None
        self.error: str | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        from model_service.config import Settings
        from model_service.errors import ServiceError
        from model_service.kinesis.publish import KinesisPublisher, kinesis_client
        from stream_tools.producer import produce

        def count(report: ProduceReport, chunk: list[RideRecord]) -> None:
            self.sent = report.sent

        publisher = KinesisPublisher(kinesis_client(Settings.from_env()), self.stream)
        try:
            self.report = produce(publisher, self.records, rate=self.rate, on_chunk=count, stop=self.stopping.is_set)
        except ServiceError as exc:  # Kinesis out of reach, the stream gone: said once, by stream_rides
            self.error = str(exc)


def stream_rides(args: argparse.Namespace, local_aws: Any, endpoint: str, model_uris: list[str]) -> int:
    from local_stack.deploy import model_parameters, publish_model
    from stream_tools.producer import rides_from_parquet, with_malformed

    clients = local_aws.Clients(endpoint)
    parameters: dict[str, str] = {}
    for model_uri in model_uris:
        model = publish_model(clients, model_uri)
        parameters |= model_parameters(model.target, model.model_uri, model.version)
        say(
            f"{model.target.name} model {model_uri} resolved to version {model.version} ({model.description}),"
            f" uploaded to {model.model_uri}"
        )
    deploy_started = time.monotonic()
    stack = local_aws.deploy(clients, STACK_NAME, parameters)
    say(
        f"deployed template.yaml as {STACK_NAME} in {time.monotonic() - deploy_started:.0f} s:"
        f" {stack.input_stream} -> duration and cost consumers -> {stack.predictions_stream} -> decision function"
        f" -> {stack.decisions_stream}; rejected records -> {stack.dead_letter_stream}"
    )

    source = trip_months()[1]
    rides = list(islice(rides_from_parquet(source), args.rides))
    records = list(with_malformed(rides, args.malformed_fraction))
    malformed = sum(r.malformed is not None for r in records)
    say(f"sending {len(records)} rides from {source.name} at {args.rate:g} rides/s, {malformed} of them malformed")
    say("the first predictions wait for the prediction functions to start and load their models (a few seconds)")
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
        say(f"FAILED: the producer stopped: {producer.error or 'with an error (above)'}")
        return 1
    return summary(view.outputs, producer.report, time.monotonic() - view.started)


def accounted(outputs: Outputs, sent: int) -> bool:
    """Every ride sent is a prediction or a dead letter of each consumer, and every prediction has its decision."""
    each = all(sum(outputs.of(consumer)) >= sent for consumer in CONSUMERS)
    return each and len(outputs.decisions) >= len(outputs.predictions)


def summary(outputs: Outputs, report: Any, seconds: float) -> int:
    predictions, decisions = len(outputs.predictions), len(outputs.decisions)
    malformed = sum(report.malformed.values())
    why = f" ({report.retry_reasons_text()})" if report.retried else ""
    say(
        f"sent {report.sent} rides ({malformed} malformed, {report.failed} could not be put,"
        f" {report.retried} re-sent{why}) at {report.rides_per_second:.1f} rides/s"
    )
    per_consumer = "; ".join(
        f"{consumer} {outputs.of(consumer)[0]} predictions + {outputs.of(consumer)[1]} dead letters"
        for consumer in CONSUMERS
    )
    flags = ", ".join(f"{outputs.decided(flag)} {flag}" for flag in FLAGS)
    say(f"out: {per_consumer} ({malformed} malformed sent); {decisions} decisions ({flags})")
    complete = all(sum(outputs.of(consumer)) == report.sent for consumer in CONSUMERS)
    if complete and decisions == predictions and not report.failed:
        say(
            f"OK: all {report.sent} rides accounted for by each consumer in {seconds:.0f} s ({per_consumer}),"
            " each prediction decided"
        )
        return 0
    say(f"FAILED: {report.sent} rides sent; {per_consumer}; {decisions} of {predictions} predictions decided")
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
    """Start LocalStack, train if needed, deploy, stream rides through the stack (or walk a model change)."""
    from local_stack import aws as local_aws
    from local_stack.server import LocalStackError
    from scripts.model_cycle import cycle

    try:
        with demo_localstack(args.port) as localstack:
            os.environ.update(local_aws.client_environment(localstack.endpoint))
            if args.mode == "cycle":
                return cycle(args, localstack.endpoint, ensure_models(), trip_months())
            return stream_rides(args, local_aws, localstack.endpoint, ensure_models())
    except LocalStackError as exc:  # raised only by the start: the port is taken, or LocalStack does not come up
        print(f"error: {exc}", file=sys.stderr)
        return 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("local", "cycle", "offline", "train"))
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
    if args.mode in ("local", "cycle"):
        try:
            return local(args)
        except KeyboardInterrupt:
            say("interrupted; LocalStack was stopped")
            return 130
    model_uris = ensure_models()
    if args.mode == "offline":
        offline(model_uris)
    return 0


if __name__ == "__main__":
    sys.exit(main())
