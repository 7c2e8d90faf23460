"""The model-change cycle on the local stack: a challenger in shadow, compared, promoted and rolled back.

``make demo-cycle`` (``python -m scripts.demo cycle``): with the champions the
demo trains (duration and cost), it trains a duration challenger (a random
forest, on the champion's month: with two months at hand, the challenger
differs by its kind; on a live feed it would be the newest month's), deploys
template.yaml serving the champions, deploys the challenger in shadow with
``python -m model_service challenge``, streams rides, compares the two with
``compare`` (live, and on February's actuals, with its picture), promotes the
challenger, streams rides, rolls back, streams rides, and checks that every
ride of each phase got its prediction from that phase's champion.

LocalStack's CloudFormation does not update nested stacks or aliases, so a
promotion's stack update cannot be run here (``promote --stack-name`` says
so); the cycle makes the same Lambda calls the update makes on AWS
(``local_stack.aws.move_live_alias``) and moves the registry's aliases after
them, as ``promote`` and ``rollback`` do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STACK_NAME = "ride-duration-cycle"
MODEL = "ride-duration"
PICTURE = Path("artifacts") / "compare-ride-duration.png"


def tracking_uri() -> str:
    """The MLflow store the demo trains into and the commands read: MLFLOW_TRACKING_URI, else the local one."""
    from model_service.config import Settings

    return Settings.from_env().tracking_uri


def say(message: str) -> None:
    print(f"[cycle] {message}", flush=True)


def run_command(*argv: str) -> int:
    """A ``python -m model_service`` command in this process, its output shown as it is."""
    from model_service.cli import main

    print(f"$ python -m model_service {' '.join(argv)}", flush=True)
    return main(list(argv))


def train_challenger(train: Path, val: Path) -> None:
    say(f"training a duration challenger: a random forest on {train.name}, validated on {val.name} ...")
    command = ["train", "--train", str(train), "--val", str(val), "--target", "duration", "--model", "random-forest"]
    subprocess.run(
        [sys.executable, "-m", "model_service", *command],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )


def ensure_challenger(model_uris: list[str], months: tuple[Path, Path]) -> None:
    """The served duration version as champion (a store from before aliases has none), and a challenger."""
    from mlflow import MlflowClient

    from model_service.model.aliases import CHALLENGER, CHAMPION, alias_version

    client = MlflowClient(tracking_uri())
    served = next(uri.rsplit("/", 1)[1] for uri in model_uris if uri.startswith(f"models:/{MODEL}/"))
    if alias_version(client, MODEL, CHAMPION) != served:
        client.set_registered_model_alias(MODEL, CHAMPION, served)
        say(f"{MODEL}@{CHAMPION} set to version {served}, the one the demo serves")
    challenger = alias_version(client, MODEL, CHALLENGER)
    if challenger is None:
        train_challenger(*months)
    else:
        say(f"using the challenger registered earlier, {MODEL} version {challenger}")


def send(stream: str, rides: list[dict[str, Any]]) -> None:
    from model_service.config import Settings
    from model_service.kinesis.publish import KinesisPublisher, kinesis_client
    from stream_tools.producer import produce, with_malformed

    records = list(with_malformed(rides, 0))
    report = produce(KinesisPublisher(kinesis_client(Settings.from_env()), stream), records, rate=40)
    if report.failed:
        raise RuntimeError(f"{report.failed} rides could not be put")


def versions_of(kinesis: Any, stream: str, consumer: str, ride_ids: set[str], timeout: float = 120) -> set[str]:
    """The versions of ``consumer``'s events for ``ride_ids``, once every one of them has one."""
    from model_service.kinesis.read import read_all

    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, str] = {}
        for event in read_all(kinesis, stream):
            if str(event.get("event_id", "")).endswith(f"/{consumer}"):
                found.setdefault(str(event["prediction"]["ride_id"]), event["version"])
        if ride_ids <= set(found):
            return {found[r] for r in ride_ids}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ride_ids - set(found))} rides have no {consumer} event on {stream}")
        time.sleep(1)


def switch_champion(clients: Any, local_aws: Any, function: str, plan: Any, upload_to: str) -> str:
    """Deploy the version ``plan`` names to ``function``'s live alias, then move the registry's aliases."""
    from model_service.model.aliases import apply
    from model_service.model.deploy import prepare_deployment

    model = prepare_deployment(
        f"models:/{MODEL}/{plan.version}", upload_to=upload_to, s3=clients("s3"), tracking_uri=tracking_uri()
    )
    local_aws.move_live_alias(clients, function, model.model_uri, model.version)
    apply(plan, tracking_uri())
    return model.version


def cycle(args: Any, endpoint: str, model_uris: list[str], months: tuple[Path, Path]) -> int:
    from local_stack import aws as local_aws
    from local_stack.deploy import model_parameters, publish_model
    from model_service.model.aliases import plan_promotion, plan_rollback
    from stream_tools.producer import rides_from_parquet

    clients = local_aws.Clients(endpoint)
    upload_to = f"s3://{local_aws.MODEL_BUCKET}/{local_aws.MODEL_PREFIX}"
    parameters: dict[str, str] = {}
    for model_uri in model_uris:
        model = publish_model(clients, model_uri)
        parameters |= model_parameters(model.target, model.model_uri, model.version)
    stack = local_aws.deploy(clients, STACK_NAME, parameters)
    say(f"deployed template.yaml as {STACK_NAME} with the champions ({', '.join(model_uris)})")
    ensure_challenger(model_uris, months)

    if run_command("challenge", "--model", MODEL, "--upload-to", upload_to, "--stack-name", STACK_NAME):
        return 1
    kinesis = clients("kinesis")
    rides = list(islice(rides_from_parquet(months[1]), 3 * args.rides))
    phases = [rides[i * args.rides : (i + 1) * args.rides] for i in range(3)]

    say(f"sending {args.rides} rides; the champion answers them, and the challenger in shadow")
    send(stack.input_stream, phases[0])
    ids = {str(r["ride_id"]) for r in phases[0]}
    champion_versions = versions_of(kinesis, stack.predictions_stream, "duration", ids)
    shadow_versions = versions_of(kinesis, "ride_shadow_predictions", "duration-shadow", ids)
    say(f"every ride answered: champion version {champion_versions}, shadow version {shadow_versions}")

    code = run_command("compare", "--model", MODEL, "--from-start", "--trips", str(months[1]), "--plot", str(PICTURE))
    say(f"compare exited {code}; the picture is {PICTURE}")

    phase_versions = []
    for name, plan, batch in (("promoting", plan_promotion, phases[1]), ("rolling back", plan_rollback, phases[2])):
        move = plan(MODEL, tracking_uri())
        say(f"{name}: champion {move.previous} -> {move.version}, deployed as the update would on AWS")
        switch_champion(clients, local_aws, stack.duration_function, move, upload_to)
        send(stack.input_stream, batch)
        served = versions_of(kinesis, stack.predictions_stream, "duration", {str(r["ride_id"]) for r in batch})
        say(f"{len(batch)} rides sent after it: every one predicted by version {served}")
        phase_versions.append((move.version, served))
    if all(served == {version} for version, served in phase_versions):
        say(f"OK: every ride of each phase predicted by that phase's champion ({3 * args.rides} rides)")
        return 0
    say(f"FAILED: versions by phase {phase_versions}")
    return 1
