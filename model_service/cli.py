"""The service's commands, each a thin wrapper over the module that does the work.

train, resolve; challenge, compare, promote, rollback (changing a model safely); score, backfill.

The stream tools (produce, tail, replay) have their own: ``python -m stream_tools``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from model_service.config import Settings
from model_service.errors import InputNotFound, InvalidMonth, InvalidSetting, ServiceError
from model_service.model.aliases import CHALLENGER, CHAMPION, AliasMove
from model_service.model.training import MODEL_TYPES, RECIPES

if TYPE_CHECKING:
    from model_service.batch.monthly import Month
    from model_service.model.deploy import Role


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from model_service.model.training import train

    results = train(
        args.train,
        args.val,
        targets=args.target or tuple(RECIPES),
        model_type=args.model,
        tracking_uri=args.tracking_uri,
        register=not args.no_register,
    )
    for result in results:
        unit = result.recipe.target.unit
        print(f"{result.recipe.registered_name}: run {result.run_id}")
        print(f"  trips:          {result.train_trips:,} to train, {result.val_trips:,} to validate")
        print(f"  val_rmse:       {result.rmse:.6f} {unit}")
        print(f"  training mean:  {result.mean_rmse:.6f} {unit} (val_rmse of predicting it for every trip)")
        if result.alias is not None:
            print(f"  alias:          {_alias_move(result.alias)}")
    for result in results:
        print(f"{result.recipe.target.name.upper()}_MODEL_URI={result.model_uri}")
    print(f"MODEL_URIS={','.join(result.model_uri for result in results)}")
    return 0


def _deploy(args: argparse.Namespace, settings: Settings, uri: str, role: Role) -> None:
    """Pin ``uri`` to its version, check and copy it, and give it to the stack as ``role`` (or print how)."""
    import boto3

    from model_service.model.deploy import prepare_deployment, stack_parameters

    model = prepare_deployment(
        uri,
        upload_to=args.upload_to,
        s3=boto3.client("s3") if args.upload_to else None,
        allow_pickle=settings.model_allow_pickle,
        tracking_uri=args.tracking_uri,
    )
    print(f"{uri} is version {model.version} ({model.description}), at {model.model_uri}")
    overrides = stack_parameters(model.target, role, model.model_uri, model.version)
    if role == "Model":  # a promoted or restored champion: its shadow has nothing left to try
        overrides.update(stack_parameters(model.target, "Challenger", ""))
    if not args.stack_name:
        print("deploy with these parameters (or give --stack-name to update the stack):")
        for key, value in overrides.items():
            print(f"{key}={value}")
        return
    from model_service.model.deploy import check_served, consumer_resource, redeploy

    cfn = boto3.client("cloudformation")
    changed = redeploy(cfn, args.stack_name, overrides)
    parameters = ", ".join(f"{key}={value or '(none)'}" for key, value in overrides.items())
    print(f"stack {args.stack_name} {'updated' if changed else 'unchanged, already'}: {parameters}")
    consumer = consumer_resource(model.target, role)
    function = check_served(cfn, boto3.client("lambda"), args.stack_name, consumer, model)
    print(f"{function} serves version {model.version} from its next batch on")


def _challenge(args: argparse.Namespace, settings: Settings) -> int:
    _deploy(args, settings, f"models:/{args.model}@{CHALLENGER}", "Challenger")
    return 0


def _move_champion(args: argparse.Namespace, settings: Settings, plan: Callable[..., AliasMove]) -> int:
    """Deploy the version ``plan`` names as the champion, then move the aliases: they always say what serves."""
    from model_service.model.aliases import apply

    move = plan(args.model, args.tracking_uri)
    _deploy(args, settings, f"models:/{args.model}/{move.version}", "Model")
    apply(move, args.tracking_uri)
    print(f"{args.model}: {_alias_move(move)}")
    return 0


def _promote(args: argparse.Namespace, settings: Settings) -> int:
    from model_service.model.aliases import plan_promotion

    return _move_champion(args, settings, plan_promotion)


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    from model_service.model.aliases import plan_rollback

    return _move_champion(args, settings, plan_rollback)


def _compare(args: argparse.Namespace, settings: Settings) -> int:
    """Print the comparison, draw it, and exit 1 when the challenger is worse than --fail-if-worse-by allows."""
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from model_service.kinesis.read import read_all, reading_client
    from model_service.model import compare
    from model_service.model.training import RECIPES_BY_NAME
    from model_service.service import PredictionService

    target = RECIPES_BY_NAME[args.model].target
    if args.fail_if_worse_by is not None and not args.trips:
        raise InvalidSetting("--fail-if-worse-by gates on RMSE, which needs --trips (a month with actuals)")
    if not (args.trips or args.minutes or args.from_start):
        raise InvalidSetting("give --minutes N or --from-start (the streams), --trips FILE (a month), or both")
    stream = month = None
    if args.minutes or args.from_start:
        since = None if args.from_start else datetime.now(UTC) - timedelta(minutes=args.minutes)
        streams = (settings.predictions_stream_name, settings.shadow_predictions_stream_name)
        client = reading_client()
        champion_events, challenger_events = (read_all(client, name, since) for name in streams)
        stream = compare.join_events(champion_events, challenger_events, target)
        print("\n".join(compare.stream_lines(stream, target, streams, since)))
    if args.trips:
        champion, challenger = (
            PredictionService.load(
                f"models:/{args.model}@{alias}",
                allow_pickle=settings.model_allow_pickle,
                tracking_uri=args.tracking_uri,
            )
            for alias in (CHAMPION, CHALLENGER)
        )
        month = compare.compare_on_trips(args.trips, target, champion, challenger)
        print("\n".join(compare.month_lines(month, target, champion.version, challenger.version)))
    title = f"{args.model}: champion vs challenger"
    print(f"picture: {compare.draw(target, stream, month, Path(args.plot or f'compare-{args.model}.png'), title)}")
    if month is None or args.fail_if_worse_by is None:
        return 0
    allowed = f"{args.fail_if_worse_by:g} {target.unit}"
    if month.difference > args.fail_if_worse_by:
        print(f"verdict: the challenger is worse by more than the {allowed} allowed: do not promote")
        return 1
    print(f"verdict: the challenger is within the {allowed} allowed")
    return 0


def _alias_move(move: AliasMove) -> str:
    was = f"version {move.previous}" if move.previous else "none"
    if move.alias == CHALLENGER:
        return f"{CHALLENGER} (version {move.version}; was {was}): try it in shadow, then promote it"
    return f"{move.alias} (version {move.version}; was {was})"


def _resolve(args: argparse.Namespace, settings: Settings) -> int:
    from model_service.model.deploy import prepare_deployment

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


def _score(args: argparse.Namespace, settings: Settings) -> int:
    from model_service.batch.monthly import Month, month_not_found, month_paths
    from model_service.batch.score import score_file
    from model_service.service import RideModels
    from model_service.trips import ride_id_prefix

    input_path, output_path = args.input, args.output
    month = Month(args.year, args.month) if args.year is not None and args.month is not None else None
    if (input_path is None or output_path is None) and month is None:
        raise InvalidSetting("give --input and --output, or --year and --month to fill the path templates")
    if month is not None:
        from_input, from_output = month_paths(
            args.input_template, args.output_template, taxi_type=args.taxi_type, month=month
        )
        input_path, output_path = input_path or from_input, output_path or from_output
    models = RideModels.from_settings(_batch_settings(args, settings))
    try:
        report = score_file(
            models,
            input_path,
            output_path,
            ride_id_prefix=ride_id_prefix(month.year, month.month) if month else "",
            chunk_rows=args.chunk_rows,
            progress=sys.stderr,
        )
    except InputNotFound:
        if args.input is not None or month is None:  # a path given, not one the template made
            raise
        raise month_not_found(args.taxi_type, month, input_path) from None
    print(f"input:          {input_path}")
    print(f"output:         {output_path}")
    print(f"model_versions: {', '.join(f'{target}={version}' for target, version in models.versions.items())}")
    print(f"rows:           {report.rows}")
    print(f"predicted:      {report.predicted}")
    print(f"not predicted:  {report.unpredicted} (null or out-of-range zone ids or trip_distance)")
    print(f"seconds:        {report.seconds:.2f}")
    print(f"rows/s:         {report.rows_per_second:,.0f}")
    return 0


def _backfill(args: argparse.Namespace, settings: Settings) -> int:
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
            job = _batch_settings(args, settings)
            outcomes = backfill_here(
                months, args.taxi_type, job, parallel=args.parallel, force=args.force, on_done=done
            )
    print(table(outcomes, time.perf_counter() - start))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def positive(kind: type) -> Callable[[str], int | float]:
    """An argparse type: a number of ``kind`` above zero."""

    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    return parse


def _month(text: str) -> Month:
    from model_service.batch.monthly import Month

    try:
        return Month.parse(text)
    except InvalidMonth as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _batch_arguments(command: argparse.ArgumentParser, settings: Settings) -> None:
    """What score and backfill share: the path templates, the models and the chunk size."""
    command.add_argument(
        "--input-template", default=settings.batch_input_template, help="input path template (BATCH_INPUT_TEMPLATE)"
    )
    command.add_argument(
        "--output-template", default=settings.batch_output_template, help="output path template (BATCH_OUTPUT_TEMPLATE)"
    )
    command.add_argument(
        "--model-uri",
        action="append",
        help=f"a model to score with, one per target (repeatable; MODEL_URIS: {','.join(settings.model_uris)})",
    )
    command.add_argument(
        "--model-version", action="append", help="each --model-uri's version, in order (MODEL_VERSIONS)"
    )
    command.add_argument(
        "--chunk-rows",
        type=positive(int),
        default=settings.batch_chunk_rows,
        help="rows per predict call (BATCH_CHUNK_ROWS)",
    )


def _batch_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings score and backfill run with: the environment's, overridden by the command line."""
    import dataclasses

    return dataclasses.replace(
        settings,
        batch_input_template=args.input_template,
        batch_output_template=args.output_template,
        model_uris=tuple(args.model_uri) if args.model_uri else settings.model_uris,
        model_versions=tuple(args.model_version) if args.model_version else settings.model_versions,
        batch_chunk_rows=args.chunk_rows,
    )


_MODEL_NAMES = tuple(recipe.registered_name for recipe in RECIPES.values())
_CHANGE_DESCRIPTION = (
    "The registry's aliases say what serves: champion, and challenger while one is tried. Each command moves them"
    " (train sets a new version as challenger once a champion exists), pins the alias to its version, checks the"
    " model loads as the functions will, copies it under --upload-to, and with --stack-name updates the stack's"
    " parameters (DurationModelUri, DurationChallengerUri, ...) with its template and every other parameter as"
    " they are. The endpoint is boto3's (AWS_ENDPOINT_URL for LocalStack)."
)


def _add_tracking_uri(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """The MLflow store a registry command reads and writes: every such command takes it the same way."""
    parser.add_argument(
        "--tracking-uri", default=settings.tracking_uri, help="MLflow tracking URI (MLFLOW_TRACKING_URI)"
    )


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train the duration and cost models on TLC trip parquet and register them in MLflow"
    )
    train.add_argument("--train", required=True, help="training trips (TLC parquet), e.g. January")
    train.add_argument("--val", required=True, help="validation trips (TLC parquet), e.g. February")
    train.add_argument(
        "--target", action="append", choices=tuple(RECIPES), help="train only this target's model (repeatable)"
    )
    train.add_argument("--model", choices=MODEL_TYPES, default="linear")
    _add_tracking_uri(train, settings)
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
    _add_tracking_uri(resolve, settings)
    resolve.add_argument(
        "--allow-pickle",
        action="store_true",
        default=settings.model_allow_pickle,
        help="accept an MLflow model saved with pickle (MODEL_ALLOW_PICKLE); the function must allow it too",
    )
    resolve.set_defaults(run=_resolve)

    for name, run, help_text in (
        (
            "challenge",
            _challenge,
            "deploy a model's challenger in shadow beside its champion (nothing it says is used)",
        ),
        ("promote", _promote, "make the challenger the champion, recording the version it replaces, and deploy it"),
        ("rollback", _rollback, "return the champion to the version the last promotion replaced, and deploy it"),
    ):
        command = commands.add_parser(name, help=help_text, description=_CHANGE_DESCRIPTION)
        command.add_argument("--model", required=True, choices=_MODEL_NAMES, help="the registered model")
        command.add_argument(
            "--upload-to", metavar="s3://BUCKET/PREFIX", help="copy the model under this S3 prefix (as resolve)"
        )
        command.add_argument("--stack-name", help="update this stack (template.yaml) to serve it; else print how")
        _add_tracking_uri(command, settings)
        command.set_defaults(run=run)

    compare = commands.add_parser(
        "compare",
        help="champion against challenger: on the streams (their events joined by ride) and on a month with actuals",
        description=(
            "Joins the champion's events (PREDICTIONS_STREAM_NAME) and its shadow's (SHADOW_PREDICTIONS_STREAM_NAME)"
            " by the input record they answer, and scores a month of trips with models:/NAME@champion and"
            " @challenger. Prints the table, writes a picture, and exits 1 when the challenger's RMSE is worse by"
            " more than --fail-if-worse-by."
        ),
    )
    compare.add_argument("--model", required=True, choices=_MODEL_NAMES, help="the registered model")
    compare.add_argument("--minutes", type=positive(float), help="compare the events of the last N minutes")
    compare.add_argument("--from-start", action="store_true", help="compare every event the streams keep")
    compare.add_argument("--trips", help="a TLC month with actuals (parquet) to score both models on")
    compare.add_argument("--plot", help="where to write the picture (default compare-<model>.png)")
    compare.add_argument(
        "--fail-if-worse-by",
        type=float,
        metavar="X",
        help="exit 1 if the challenger's RMSE on --trips exceeds the champion's by more than X (target's unit)",
    )
    _add_tracking_uri(compare, settings)
    compare.set_defaults(run=_compare)

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
        type=positive(int),
        default=1,
        help="months scored at once: worker processes here, concurrent invocations with --function (default 1)",
    )
    backfill.add_argument("--force", action="store_true", help="score months whose output exists too")
    backfill.add_argument(
        "--function", help="invoke this deployed scoring function for each month (its own templates and model)"
    )
    _batch_arguments(backfill, settings)
    backfill.set_defaults(run=_backfill)

    return parser


def run(parser_for: Callable[[Settings], argparse.ArgumentParser], argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run its command with the environment's settings (this CLI's and the stream tools').

    What the user must fix (a ServiceError) is one line and status 2; anything else keeps its traceback.
    """
    try:
        settings = Settings.from_env()
        args = parser_for(settings).parse_args(argv)
        return int(args.run(args, settings))
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser, argv)
