"""The service's commands, each a thin wrapper over the module that does the work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from model_service.config import Settings
from model_service.errors import ServiceError
from model_service.training import MODEL_TYPES

if TYPE_CHECKING:
    from model_service.batch.monthly import Month


def _train(args: argparse.Namespace) -> int:
    from model_service.training import train

    result = train(
        args.train,
        args.val,
        model_type=args.model,
        tracking_uri=args.tracking_uri,
        register=not args.no_register,
    )
    print(f"run_id:    {result.run_id}")
    print(f"val_rmse:  {result.rmse:.6f}")
    print(f"MODEL_URI={result.model_uri}")
    return 0


def _resolve(args: argparse.Namespace) -> int:
    from model_service.registry import prepare_deployment

    s3 = None
    if args.upload_to:
        import boto3

        s3 = boto3.client("s3")
    model = prepare_deployment(
        args.model_uri,
        upload_to=args.upload_to,
        s3=s3,
        allow_pickle=args.allow_pickle,
        tracking_uri=args.tracking_uri,
    )
    resolved = model.resolved
    print(f"{resolved.uri} is version {resolved.version}, at {resolved.artifact_uri}", file=sys.stderr)
    print(f"checked: it loads and predicts as the function will serve it ({model.description})", file=sys.stderr)
    if args.upload_to:
        print(f"copied to {model.model_uri}", file=sys.stderr)
    elif not model.model_uri.startswith("s3://"):
        print("note: the Lambda function reads s3:// only; add --upload-to s3://<bucket>/<prefix>", file=sys.stderr)
    print(f"MODEL_URI={model.model_uri}")
    print(f"MODEL_VERSION={model.version}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from model_service.batch.monthly import Month, month_paths
    from model_service.batch.score import score_file
    from model_service.service import PredictionService
    from model_service.trips import ride_id_prefix

    input_path, output_path = args.input, args.output
    month = Month(args.year, args.month) if args.year is not None and args.month is not None else None
    if (input_path is None or output_path is None) and month is None:
        raise ValueError("give --input and --output, or --year and --month to fill the path templates")
    if month is not None:
        from_input, from_output = month_paths(
            args.input_template, args.output_template, taxi_type=args.taxi_type, month=month
        )
        input_path, output_path = input_path or from_input, output_path or from_output
    service = PredictionService.load(args.model_uri, args.model_version)
    report = score_file(
        service,
        input_path,
        output_path,
        ride_id_prefix=ride_id_prefix(month.year, month.month) if month else "",
        chunk_rows=args.chunk_rows,
        progress=sys.stderr,
    )
    print(f"input:          {input_path}")
    print(f"output:         {output_path}")
    print(f"model_version:  {service.version}")
    print(f"rows:           {report.rows}")
    print(f"predicted:      {report.predicted}")
    print(f"not predicted:  {report.unpredicted} (null or out-of-range zone ids or trip_distance)")
    print(f"seconds:        {report.seconds:.2f}")
    print(f"rows/s:         {report.rows_per_second:,.0f}")
    return 0


def _backfill(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from tqdm import tqdm

    from model_service.batch.backfill import MonthOutcome, backfill_here, backfill_on_lambda, table
    from model_service.batch.monthly import month_range

    months = month_range(args.first, args.last)
    start = time.perf_counter()
    with tqdm(total=len(months), unit="month", file=sys.stderr, dynamic_ncols=True) as bar:

        def done(outcome: MonthOutcome) -> None:
            bar.set_postfix_str(f"{outcome.month} {outcome.status}", refresh=False)
            bar.update()

        if args.function:
            outcomes = backfill_on_lambda(
                months, args.taxi_type, args.function, parallel=args.parallel, force=args.force, on_done=done
            )
        else:
            settings = dataclasses.replace(
                Settings.from_env(),
                batch_input_template=args.input_template,
                batch_output_template=args.output_template,
                model_uri=args.model_uri,
                model_version=args.model_version,
                batch_chunk_rows=args.chunk_rows,
            )
            outcomes = backfill_here(
                months, args.taxi_type, settings, parallel=args.parallel, force=args.force, on_done=done
            )
    print(table(outcomes, time.perf_counter() - start))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _produce(args: argparse.Namespace) -> int:
    import signal
    import threading
    from itertools import islice

    from model_service.kinesis.publish import KinesisPublisher, kinesis_client
    from stream_tools.producer import (
        RETRY_SECONDS,
        ProduceReport,
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
    publisher = KinesisPublisher(kinesis_client(Settings.from_env()), args.stream)
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
    try:
        report = produce(
            publisher,
            records,
            rate=args.rate,
            retry_seconds=args.retry_seconds or RETRY_SECONDS,
            on_chunk=progress,
            stop=interrupted.is_set,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    malformed = ", ".join(f"{kind}: {n}" for kind, n in sorted(report.malformed.items())) or "none"
    print(f"sent:       {report.sent}")
    print(f"failed:     {report.failed}")
    print(f"re-sent:    {report.retried} (entries Kinesis throttled at first)")
    print(f"malformed:  {sum(report.malformed.values())} ({malformed})")
    print(f"seconds:    {report.seconds:.2f}")
    print(f"rides/s:    {report.rides_per_second:,.1f}")
    return 1 if report.failed else 0


def _tail(args: argparse.Namespace) -> int:
    import json
    import time

    from stream_tools.tail import StreamTail, reading_client

    tail = StreamTail(reading_client(), args.stream, position="TRIM_HORIZON" if args.from_start else "LATEST")
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
    if args.limit is not None:
        print(f"timed out after {args.timeout:g} s with {shown} of {args.limit} events", file=sys.stderr)
        return 1
    return 0


def _replay(args: argparse.Namespace) -> int:
    import boto3

    from model_service.kinesis.processor import StreamBatchProcessor
    from model_service.kinesis.publish import Publishers
    from stream_tools.replay import Replayer
    from stream_tools.tail import reading_client

    settings = Settings.from_env()
    processor: StreamBatchProcessor
    if args.function == "prediction":
        from model_service.kinesis.rides import ride_processor
        from model_service.service import PredictionService

        service = PredictionService.load(args.model_uri, settings.model_version)
        input_stream = settings.input_stream_name
        processor = ride_processor(service, Publishers.for_streams(settings.predictions_stream_name, settings))
    else:
        from model_service.kinesis.decisions import decision_processor

        input_stream = settings.predictions_stream_name
        publishers = Publishers.for_streams(settings.decisions_stream_name, settings)
        processor = decision_processor(settings.long_ride_threshold_minutes, publishers)
    replayer = Replayer(
        boto3.client("sqs"), reading_client(), processor, input_stream, seconds_per_batch=args.seconds_per_batch
    )
    # A StreamUnavailable ends the run (status 2, from main); the message being replayed stays on the queue.
    report = replayer.replay(args.queue_url)
    print(f"batches:       {report.batches} on the queue, {report.replayed} replayed and deleted")
    print(f"records:       {report.records}")
    print(f"published:     {report.published} output events, {report.dead_letters} dead letters")
    for why in report.kept:
        print(f"kept:          {why}")
    return 1 if report.kept else 0


def _positive(kind: type) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    return parse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _month(text: str) -> Month:
    from model_service.batch.monthly import Month

    try:
        return Month.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _batch_arguments(command: argparse.ArgumentParser, settings: Settings) -> None:
    """What score and backfill share: the path templates, the model and the chunk size."""
    command.add_argument(
        "--input-template", default=settings.batch_input_template, help="input path template (BATCH_INPUT_TEMPLATE)"
    )
    command.add_argument(
        "--output-template", default=settings.batch_output_template, help="output path template (BATCH_OUTPUT_TEMPLATE)"
    )
    command.add_argument("--model-uri", default=settings.model_uri, help="the model to score with (MODEL_URI)")
    command.add_argument(
        "--model-version", default=settings.model_version, help="written as model_version (MODEL_VERSION)"
    )
    command.add_argument(
        "--chunk-rows",
        type=_positive(int),
        default=settings.batch_chunk_rows,
        help="rows per predict call (BATCH_CHUNK_ROWS)",
    )


def build_parser() -> argparse.ArgumentParser:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m model_service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train on TLC trip parquet and log the model to MLflow")
    train.add_argument("--train", required=True, help="training trips (TLC parquet), e.g. January")
    train.add_argument("--val", required=True, help="validation trips (TLC parquet), e.g. February")
    train.add_argument("--model", choices=MODEL_TYPES, default="linear")
    train.add_argument(
        "--tracking-uri", default=settings.tracking_uri, help="MLflow tracking URI (MLFLOW_TRACKING_URI)"
    )
    train.add_argument("--no-register", action="store_true", help="log the run's model without registering it")
    train.set_defaults(run=_train)

    resolve = commands.add_parser(
        "resolve",
        help="pin an MLflow model URI to its version, check it loads, copy it to S3 for the Lambda function",
        description=(
            "Resolves models:/name/N, models:/name@alias or runs:/<run>/<path> with MLflow, loads the model as "
            "the functions will, and prints the MODEL_URI and MODEL_VERSION to deploy with. With --upload-to, "
            "the model is copied to <prefix>/<name>/<version> (runs: <prefix>/runs/<run>/<path>) first, and "
            "MODEL_URI is that copy. The endpoint is boto3's (AWS_ENDPOINT_URL for LocalStack)."
        ),
    )
    resolve.add_argument(
        "model_uri", help="models:/name/N, models:/name@alias, models:/name/latest or runs:/<run>/<path>"
    )
    resolve.add_argument("--upload-to", metavar="s3://BUCKET/PREFIX", help="copy the model under this S3 prefix")
    resolve.add_argument(
        "--tracking-uri", default=settings.tracking_uri, help="MLflow tracking URI (MLFLOW_TRACKING_URI)"
    )
    resolve.add_argument(
        "--allow-pickle",
        action="store_true",
        default=settings.model_allow_pickle,
        help="accept an MLflow model saved with pickle (MODEL_ALLOW_PICKLE); the function must allow it too",
    )
    resolve.set_defaults(run=_resolve)

    score = commands.add_parser(
        "score",
        help="predict every trip of a TLC parquet file (local or s3://) into a predictions parquet file",
        description="Give --input and --output, or --year and --month (and --taxi-type) to fill the path templates.",
    )
    score.add_argument("--input", help="trips parquet, local or s3://")
    score.add_argument("--output", help="predictions parquet to write, local or s3://")
    score.add_argument("--taxi-type", default="green", help="fills {taxi_type} in the templates")
    score.add_argument("--year", type=int, help="fills {year}, and prefixes ride ids with YYYY/MM_")
    score.add_argument("--month", type=int, help="fills {month}")
    _batch_arguments(score, settings)
    score.set_defaults(run=_score)

    backfill = commands.add_parser(
        "backfill",
        help="score every month of a range (skipping months already scored), here or on the scoring function",
        description=(
            "Each month's paths come from the templates, as for score --year --month. Exits 1 if a month failed; "
            "the closing table says why."
        ),
    )
    backfill.add_argument("--taxi-type", default="green", help="fills {taxi_type} in the templates")
    backfill.add_argument("--from", dest="first", type=_month, required=True, help="first month, YYYY-MM")
    backfill.add_argument("--to", dest="last", type=_month, required=True, help="last month, YYYY-MM (included)")
    backfill.add_argument(
        "--parallel",
        type=_positive(int),
        default=1,
        help="months scored at once: worker processes here, concurrent invocations with --function (default 1)",
    )
    backfill.add_argument("--force", action="store_true", help="score months whose output exists too")
    backfill.add_argument(
        "--function", help="invoke this deployed scoring function for each month (its own templates and model)"
    )
    _batch_arguments(backfill, settings)
    backfill.set_defaults(run=_backfill)

    produce = commands.add_parser(
        "produce",
        help="send ride events to a Kinesis stream at a chosen rate, some malformed if asked",
        description="The endpoint is boto3's: AWS_ENDPOINT_URL=http://127.0.0.1:4566 for LocalStack.",
    )
    produce.add_argument("--stream", default=settings.input_stream_name, help="input stream (INPUT_STREAM_NAME)")
    source = produce.add_mutually_exclusive_group()
    source.add_argument("--parquet", help="TLC trips parquet file to send the rides of")
    source.add_argument(
        "--generated", type=_positive(int), default=100, help="send this many generated trips (default 100)"
    )
    produce.add_argument("--seed", type=int, default=0, help="seed of the generated trips")
    produce.add_argument("--rate", type=_positive(float), help="rides per second (default: as fast as possible)")
    produce.add_argument(
        "--malformed-fraction", type=_fraction, default=0.0, help="share of records to corrupt, e.g. 0.05"
    )
    produce.add_argument("--limit", type=_positive(int), help="send at most this many records")
    produce.add_argument(
        "--retry-seconds",
        type=_positive(float),
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
    tail.add_argument("--limit", type=_positive(int), help="stop after this many events")
    tail.add_argument(
        "--timeout", type=_positive(float), help="stop after this many seconds (status 1 if short of --limit)"
    )
    tail.add_argument("--interval", type=_positive(float), default=0.5, help="seconds between polls of an idle stream")
    tail.set_defaults(run=_tail)

    replay = commands.add_parser(
        "replay",
        help="process again the batches a function's event source gave up on, from its on-failure queue",
        description=(
            "Reads each message of the on-failure queue, reads its batch back from the input stream and runs it"
            " through the function's processor (same event_ids); deletes a message once all its records are"
            " published. Streams and model come from the same settings as the function's."
        ),
    )
    replay.add_argument("--queue-url", required=True, help="the on-failure queue (stack output ...FailedBatchQueueUrl)")
    replay.add_argument(
        "--function", choices=("prediction", "decision"), default="prediction", help="whose queue it is"
    )
    replay.add_argument("--model-uri", default=settings.model_uri, help="the prediction function's model (MODEL_URI)")
    replay.add_argument(
        "--seconds-per-batch",
        type=_positive(float),
        default=60.0,
        help="publishing deadline of each batch, as a function's timeout (default 60)",
    )
    replay.set_defaults(run=_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; what the user must fix (a ServiceError, a bad value or path) is one line and status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ServiceError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
