"""The stream tools' commands: ``python -m stream_tools produce|tail|replay``; see ``--help``.

Tools for people, tests and the demo, around the deployed streams; the
Lambda images ship none of them. Each command is a thin wrapper over its
module (``producer``, ``tail``, ``replay``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from model_service.cli import positive, run
from model_service.config import Settings

if TYPE_CHECKING:
    from stream_tools.producer import ProduceReport


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    import logging
    import signal
    import threading
    from itertools import islice

    from model_service.kinesis import publish as publish_module
    from model_service.kinesis.publish import KinesisPublisher, kinesis_client
    from stream_tools.producer import (
        RETRY_SECONDS,
        KinesisUnreachable,
        RideRecord,
        produce,
        rides_from_parquet,
        rides_from_trips,
        with_malformed,
    )

    if args.parquet:
        events, origin = rides_from_parquet(args.parquet), args.parquet
    else:
        from model_service.sample_data import make_trips

        events, origin = rides_from_trips(make_trips(args.generated, seed=args.seed)), "generated trips"
    records = with_malformed(islice(events, args.limit), args.malformed_fraction)
    publisher = KinesisPublisher(kinesis_client(settings), args.stream)
    shown_at = [0.0]

    def progress(report: ProduceReport, chunk: list[RideRecord]) -> None:
        if report.seconds - shown_at[0] >= 1:
            shown_at[0] = report.seconds
            rate = f"{report.rides_per_second:,.1f} rides/s"
            print(f"sent {report.sent}  failed {report.failed}  {rate}", file=sys.stderr, flush=True)

    pace = f"{args.rate:g} rides/s" if args.rate else "as fast as possible"
    print(f"sending rides from {origin} to {args.stream} at {pace} (Ctrl-C stops)", file=sys.stderr, flush=True)
    # Ctrl-C ends the run between two PutRecords calls, so the summary still counts every record put.
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    # The summary says what the publisher's log would (re-sent and why, failed), once; an endpoint out of reach is
    # one error line, not a warning per call.
    publisher_log = logging.getLogger(publish_module.__name__)
    log_level = publisher_log.level
    publisher_log.setLevel(logging.CRITICAL)
    try:
        report = produce(
            publisher,
            records,
            rate=args.rate,
            retry_seconds=args.retry_seconds or RETRY_SECONDS,
            on_chunk=progress,
            stop=interrupted.is_set,
        )
    except KinesisUnreachable as exc:  # one line and status 2 (from main); the summary only if some rides went out
        if exc.report.sent:
            _produce_summary(exc.report)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        publisher_log.setLevel(log_level)
    _produce_summary(report)
    return 1 if report.failed else 0


def _produce_summary(report: ProduceReport) -> None:
    malformed = ", ".join(f"{kind}: {n}" for kind, n in sorted(report.malformed.items())) or "none"
    print(f"sent:       {report.sent}")
    print(f"failed:     {report.failed}")
    print(f"re-sent:    {report.resent()}")
    print(f"malformed:  {sum(report.malformed.values())} ({malformed})")
    print(f"seconds:    {report.seconds:.2f}")
    print(f"rides/s:    {report.rides_per_second:,.1f}")


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    """Print the stream's events; a stream missing at the start, or lost on the way, is one line and status 2."""
    import json
    import time

    from botocore.exceptions import BotoCoreError, ClientError

    from model_service.kinesis.read import StreamTail, reading_client
    from stream_tools.reach import check_stream, lost

    client = reading_client()
    check_stream(client, args.stream)
    tail = StreamTail(client, args.stream, position="TRIM_HORIZON" if args.from_start else "LATEST")
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    shown = 0
    try:
        for event in tail.follow(args.interval, stop=lambda: deadline is not None and time.monotonic() > deadline):
            print(json.dumps(event), flush=True)
            shown += 1
            if shown == args.limit:
                return 0
    except KeyboardInterrupt:
        return 130
    except (BotoCoreError, ClientError) as exc:
        raise lost(exc, client, args.stream) from None
    if args.limit is not None:
        print(f"timed out after {args.timeout:g} s with {shown} of {args.limit} events", file=sys.stderr)
        return 1
    return 0


REPLAY_NEEDS_A_MODEL = (
    "replay needs the model the function runs: give --from-function NAME (reads its live alias) or --model-uri URI"
)


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay with the function's settings: read from its live alias, or given; never a default model."""
    import dataclasses

    import boto3

    from model_service.config import given
    from model_service.errors import InvalidSetting
    from model_service.kinesis.function import decision_steps, prediction_steps
    from model_service.kinesis.publish import Publishers
    from model_service.kinesis.read import reading_client
    from model_service.service import PredictionService
    from stream_tools.replay import Replayer, function_settings

    function = function_settings(boto3.client("lambda"), args.from_function) if args.from_function else None
    if function is not None:
        settings = function.settings
    runs = given("MODEL_URI", function.environment if function else None)
    if args.function == "prediction":
        model_uri = args.model_uri or runs
        if model_uri is None:
            if function is None:
                raise InvalidSetting(REPLAY_NEEDS_A_MODEL)
            raise InvalidSetting(
                f"{function.function_name} ({function.which}) has no MODEL_URI in its environment: is it a"
                " prediction function? Give --model-uri URI, or --function decision for the decision function"
            )
        settings = dataclasses.replace(settings, model_uri=model_uri)
    if function is not None:
        model = ""
        if args.function == "prediction":
            model = f": MODEL_URI={settings.model_uri}"
            if args.model_uri and args.model_uri != runs:
                model += f" (given by --model-uri; the function runs {runs})"
        print(f"replaying as {function.function_name} ({function.which}){model}", flush=True)
        for version, share in function.shares.items():
            print(f"note: the alias also sends {share:.0%} of the batches to version {version}", flush=True)
    if args.function == "prediction":
        steps = prediction_steps(PredictionService.from_settings(settings), settings)
    else:
        steps = decision_steps(settings)
    processor = steps.processor(Publishers.for_streams(steps.output_stream, settings))
    replayer = Replayer(
        boto3.client("sqs"), reading_client(), processor, steps.input_stream, seconds_per_batch=args.seconds_per_batch
    )
    # A StreamUnavailable ends the run (status 2, from main); the message being replayed stays on the queue.
    report = replayer.replay(args.queue_url)
    print(f"batches:       {report.batches} on the queue, {report.replayed} replayed and deleted")
    print(f"records:       {report.records}")
    print(f"published:     {report.published} output events, {report.dead_letters} dead letters")
    for why in report.kept:
        print(f"kept:          {why}")
    return KEPT_STATUS + min(len(report.kept), MAX_KEPT_COUNTED) if report.kept else 0


KEPT_STATUS = 10
"""replay's exit status is 10 + the number of messages kept (0: all replayed; 2, as every command: an error)."""
MAX_KEPT_COUNTED = 89


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stream_tools", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    produce = commands.add_parser(
        "produce",
        help="send ride events to a Kinesis stream at a chosen rate, some malformed if asked",
        description="The endpoint is boto3's: AWS_ENDPOINT_URL=http://127.0.0.1:4566 for LocalStack.",
    )
    produce.add_argument("--stream", default=settings.input_stream_name, help="input stream (INPUT_STREAM_NAME)")
    source = produce.add_mutually_exclusive_group()
    source.add_argument("--parquet", help="TLC trips parquet file to send the rides of")
    source.add_argument(
        "--generated", type=positive(int), default=100, help="send this many generated trips (default 100)"
    )
    produce.add_argument("--seed", type=int, default=0, help="seed of the generated trips")
    produce.add_argument("--rate", type=positive(float), help="rides per second (default: as fast as possible)")
    produce.add_argument(
        "--malformed-fraction", type=_fraction, default=0.0, help="share of records to corrupt, e.g. 0.05"
    )
    produce.add_argument("--limit", type=positive(int), help="send at most this many records")
    produce.add_argument(
        "--retry-seconds",
        type=positive(float),
        help="seconds refused entries are sent again before they count as failed (default 30)",
    )
    produce.set_defaults(run=_produce)

    tail = commands.add_parser(
        "tail",
        help="print a Kinesis stream's events, one JSON object a line, as they arrive",
        description="The endpoint is boto3's: AWS_ENDPOINT_URL=http://127.0.0.1:4566 for LocalStack.",
    )
    tail.add_argument(
        "--stream", default=settings.predictions_stream_name, help="stream to follow (PREDICTIONS_STREAM_NAME)"
    )
    tail.add_argument("--from-start", action="store_true", help="start at the oldest record, not at the end")
    tail.add_argument("--limit", type=positive(int), help="stop after this many events")
    tail.add_argument(
        "--timeout", type=positive(float), help="stop after this many seconds (status 1 if short of --limit)"
    )
    tail.add_argument("--interval", type=positive(float), default=0.5, help="seconds between polls of an idle stream")
    tail.set_defaults(run=_tail)

    replay = commands.add_parser(
        "replay",
        help="process again the batches a function's event source gave up on, from its on-failure queue",
        description=(
            "Reads each message of the on-failure queue, reads its batch back from the input stream and runs it"
            " through the function's processor (same event_ids); deletes a message once all its records are"
            " published. A message that cannot be replayed (not an on-failure record, its records gone or"
            " unreadable) is kept, its reason printed, and the next one goes on. Exit status: 0 when every"
            " message was replayed, 10 + the number kept (up to 99) otherwise, 2 for an error that ends the run."
            " Streams and model are the function's: --from-function reads them from the version its live alias"
            " runs; else they come from the environment (MODEL_URI, INPUT_STREAM_NAME, ...), and the model must be"
            " given (MODEL_URI or --model-uri): replay never falls back to a default model."
        ),
    )
    replay.add_argument("--queue-url", required=True, help="the on-failure queue (stack output ...FailedBatchQueueUrl)")
    replay.add_argument(
        "--function", choices=("prediction", "decision"), default="prediction", help="whose queue it is"
    )
    replay.add_argument(
        "--from-function",
        metavar="NAME",
        help="the deployed function whose batches these are (stack output ...FunctionName): its live alias' settings",
    )
    replay.add_argument(
        "--model-uri",
        metavar="URI",
        help="the prediction function's model (default: the function's, or MODEL_URI); overrides both",
    )
    replay.add_argument(
        "--seconds-per-batch",
        type=positive(float),
        default=60.0,
        help="publishing deadline of each batch, as a function's timeout (default 60)",
    )
    replay.set_defaults(run=_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; what the user must fix, and an endpoint out of reach, is one line on stderr and status 2."""
    from model_service.kinesis.publish import UNREACHABLE_ERRORS
    from stream_tools.reach import unreachable

    try:
        return run(build_parser, argv)
    except UNREACHABLE_ERRORS as exc:  # a call no command expected to fail so: still a connection error, said so
        print(f"error: {unreachable(exc)}", file=sys.stderr)
        return 2
