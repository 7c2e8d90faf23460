"""The service's commands, each a thin wrapper over the module that does the work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from model_service.config import Settings


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


def _score(args: argparse.Namespace) -> int:
    from model_service.batch import month_paths, ride_id_prefix, score_file
    from model_service.model_loader import ModelLoadError
    from model_service.service import PredictionService

    input_path, output_path = args.input, args.output
    have_month = args.year is not None and args.month is not None
    if (input_path is None or output_path is None) and not have_month:
        raise ValueError("give --input and --output, or --year and --month to fill the path templates")
    if have_month:
        from_input, from_output = month_paths(
            args.input_template, args.output_template, taxi_type=args.taxi_type, year=args.year, month=args.month
        )
        input_path, output_path = input_path or from_input, output_path or from_output
    try:
        service = PredictionService.load(args.model_uri, args.model_version)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = score_file(
        service,
        input_path,
        output_path,
        ride_id_prefix=ride_id_prefix(args.year, args.month) if have_month else "",
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


def build_parser() -> argparse.ArgumentParser:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m model_service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train on TLC trip parquet and log the model to MLflow")
    train.add_argument("--train", required=True, help="training trips (TLC parquet), e.g. January")
    train.add_argument("--val", required=True, help="validation trips (TLC parquet), e.g. February")
    train.add_argument("--model", choices=("linear", "random-forest"), default="linear")
    train.add_argument(
        "--tracking-uri", default=settings.tracking_uri, help="MLflow tracking URI (MLFLOW_TRACKING_URI)"
    )
    train.add_argument("--no-register", action="store_true", help="log the run's model without registering it")
    train.set_defaults(run=_train)

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
    score.add_argument(
        "--input-template", default=settings.batch_input_template, help="input path template (BATCH_INPUT_TEMPLATE)"
    )
    score.add_argument(
        "--output-template", default=settings.batch_output_template, help="output path template (BATCH_OUTPUT_TEMPLATE)"
    )
    score.add_argument("--model-uri", default=settings.model_uri, help="the model to score with (MODEL_URI)")
    score.add_argument(
        "--model-version", default=settings.model_version, help="written as model_version (MODEL_VERSION)"
    )
    score.add_argument(
        "--chunk-rows", type=int, default=settings.batch_chunk_rows, help="rows per predict call (BATCH_CHUNK_ROWS)"
    )
    score.set_defaults(run=_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
