"""local_stack/deploy.py: the deploy step of the docker-compose setup, on the session's LocalStack.

Community LocalStack in Docker cannot run Image functions, so deploy.py can
turn them into Zip functions of the same code. The Docker-free LocalStack runs
Zip functions too, which lets the variant be deployed and fed rides here.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator

import pytest

from local_stack import deploy
from local_stack.aws import PROJECT_ROOT, TEMPLATE, wait_until
from model_service.kinesis.read import StreamTail
from tests.mlflow_store import registered_champion

TEMPLATES = {"template.yaml": TEMPLATE, "stacks/model-consumer.yaml": PROJECT_ROOT / "stacks" / "model-consumer.yaml"}
HANDLERS = {
    "template.yaml": {
        "DecisionFunction": "decision_function.lambda_handler",
        "ScoringFunction": "score_function.lambda_handler",
    },
    "stacks/model-consumer.yaml": {"Function": "lambda_function.lambda_handler"},
}


def functions(template: dict) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


@pytest.mark.parametrize("name", TEMPLATES)
def test_each_image_function_becomes_a_python311_zip_function_of_the_image_command(name):
    zipped = deploy.zip_function_template(TEMPLATES[name].read_text(), "code-bucket")
    by_name = {function: f["Properties"] for function, f in functions(zipped).items()}
    assert {function: p["Handler"] for function, p in by_name.items()} == HANDLERS[name]
    for properties in by_name.values():
        assert (properties["PackageType"], properties["Runtime"]) == ("Zip", "python3.11")
        assert properties["CodeUri"] == {"Bucket": "code-bucket", "Key": deploy.CODE_KEY}
        assert "ImageUri" not in properties
        assert "ImageConfig" not in properties


@pytest.mark.parametrize("name", TEMPLATES)
def test_everything_else_is_deployed_as_the_template_has_it(name):
    text = TEMPLATES[name].read_text()
    zipped = deploy.zip_function_template(text, "b")
    original = deploy.zip_function_template(text.replace("PackageType: Image", "PackageType: X"), "b")
    assert zipped["Parameters"] == original["Parameters"]
    assert zipped["Outputs"] == original["Outputs"]
    others = set(zipped["Resources"]) - set(functions(zipped))
    assert {k: zipped["Resources"][k] for k in others} == {k: original["Resources"][k] for k in others}
    for function in functions(zipped):
        properties = zipped["Resources"][function]["Properties"]
        assert properties["Role"] == original["Resources"][function]["Properties"]["Role"]
        assert properties.get("Events") == original["Resources"][function]["Properties"].get("Events")


def test_the_code_zip_holds_the_handlers_and_the_package_they_import(tmp_path):
    names = zipfile.ZipFile(deploy.code_zip(tmp_path / "code.zip")).namelist()
    assert {"lambda_function.py", "decision_function.py", "score_function.py", "model_service/__init__.py"} <= set(
        names
    )
    assert "model_service/kinesis/processor.py" in names
    assert not [n for n in names if "__pycache__" in n]


def test_a_directory_that_is_not_an_mlflow_model_is_refused(localstack, tmp_path, capsys):
    status = deploy.main(["--endpoint", localstack.endpoint, "--model-dir", str(tmp_path)])
    assert status == 2
    assert "no MLmodel file" in capsys.readouterr().err


def test_zip_functions_deployed_by_the_cli_predict_rides(localstack, clients, model_dirs, capsys, phase):
    streams = {
        "InputStreamName": "zip_ride_events",
        "PredictionsStreamName": "zip_ride_predictions",
        "DecisionsStreamName": "zip_ride_decisions",
        "DeadLetterStreamName": "zip_ride_dead_letters",
    }
    args = ["--endpoint", localstack.endpoint, "--stack-name", "ride-duration-zip"]
    args += [f"--model-dir={directory}" for directory in model_dirs.values()]
    with phase("deploy.py --zip-functions"):
        status = deploy.main([*args, "--zip-functions", *(f"--param={k}={v}" for k, v in streams.items())])
    outputs = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert status == 0
    assert outputs["PredictionsStreamName"] == "zip_ride_predictions"
    lam = clients("lambda")
    for function in ("DurationFunctionName", "CostFunctionName", "DecisionFunctionName"):
        assert lam.get_function_configuration(FunctionName=outputs[function])["PackageType"] == "Zip"

    ride = {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": "zip-1"}
    clients("kinesis").put_record(StreamName="zip_ride_events", Data=json.dumps(ride).encode(), PartitionKey="1")
    tail = StreamTail(clients("kinesis"), "zip_ride_predictions")
    events: list[dict] = []
    wait_until(lambda: events.extend(tail.events()) or len(events) >= 2, 90, "a prediction from each Zip function")
    assert sorted((e["model"], e["prediction"]["ride_id"]) for e in events) == [
        ("ride_cost_prediction_model", "zip-1"),
        ("ride_duration_prediction_model", "zip-1"),
    ]


@pytest.fixture
def registered_models(tmp_path) -> Iterator[list[str]]:
    """Models logged as training logs them, registered as ride-duration and ride-cost version 1, aliased champion."""
    from model_service.model.features import features_for_frame
    from model_service.model.training import build_pipeline
    from model_service.sample_data import make_trips
    from model_service.trips import add_duration

    trips = add_duration(make_trips(2000, seed=3))
    duration = build_pipeline("linear").fit(features_for_frame(trips), trips["duration"].to_numpy())
    cost = build_pipeline("linear").fit(features_for_frame(trips), trips["fare_amount"].to_numpy())
    with registered_champion(duration, tmp_path, cost):
        yield ["models:/ride-duration@champion", "models:/ride-cost@champion"]


def test_registered_models_are_resolved_copied_under_their_versions_and_served_by_their_consumers(
    localstack, clients, registered_models, capsys, phase
):
    streams = {
        "InputStreamName": "resolved_ride_events",
        "PredictionsStreamName": "resolved_ride_predictions",
        "DecisionsStreamName": "resolved_ride_decisions",
        "DeadLetterStreamName": "resolved_ride_dead_letters",
        "ModelBucket": "ride-duration-resolved-models",
    }
    args = ["--endpoint", localstack.endpoint, "--stack-name", "ride-duration-resolved"]
    args += [f"--model-uri={uri}" for uri in registered_models]
    with phase("deploy.py --model-uri (resolve step)"):
        status = deploy.main([*args, *(f"--param={k}={v}" for k, v in streams.items())])
    outputs = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert status == 0
    assert outputs["DurationModelUri"] == "s3://ride-duration-resolved-models/ride-duration/ride-duration/1"
    assert outputs["CostModelUri"] == "s3://ride-duration-resolved-models/ride-duration/ride-cost/1"

    ride = {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": "resolved-1"}
    clients("kinesis").put_record(StreamName="resolved_ride_events", Data=json.dumps(ride).encode(), PartitionKey="1")
    tail = StreamTail(clients("kinesis"), "resolved_ride_predictions")
    events: list[dict] = []
    wait_until(lambda: events.extend(tail.events()) or len(events) >= 2, 90, "a prediction from each resolved model")
    assert sorted((e["model"], e["prediction"]["ride_id"], e["version"]) for e in events) == [
        ("ride_cost_prediction_model", "resolved-1", "1"),
        ("ride_duration_prediction_model", "resolved-1", "1"),
    ]
