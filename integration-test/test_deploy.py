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
from local_stack.aws import TEMPLATE, wait_until
from stream_tools.tail import StreamTail
from tests.mlflow_store import registered_champion


@pytest.fixture(scope="module")
def zip_template() -> dict:
    return deploy.zip_function_template(TEMPLATE.read_text(), "code-bucket")


def functions(template: dict) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def test_each_image_function_becomes_a_python311_zip_function_of_the_image_command(zip_template):
    by_name = {name: f["Properties"] for name, f in functions(zip_template).items()}
    assert {name: p["Handler"] for name, p in by_name.items()} == {
        "PredictionFunction": "lambda_function.lambda_handler",
        "DecisionFunction": "decision_function.lambda_handler",
        "ScoringFunction": "score_function.lambda_handler",
    }
    for properties in by_name.values():
        assert (properties["PackageType"], properties["Runtime"]) == ("Zip", "python3.11")
        assert properties["CodeUri"] == {"Bucket": "code-bucket", "Key": deploy.CODE_KEY}
        assert "ImageUri" not in properties
        assert "ImageConfig" not in properties


def test_everything_else_is_deployed_as_the_template_has_it(zip_template):
    original = deploy.zip_function_template(TEMPLATE.read_text().replace("PackageType: Image", "PackageType: X"), "b")
    assert zip_template["Parameters"] == original["Parameters"]
    assert zip_template["Outputs"] == original["Outputs"]
    others = set(zip_template["Resources"]) - set(functions(zip_template))
    assert {k: zip_template["Resources"][k] for k in others} == {k: original["Resources"][k] for k in others}
    prediction = zip_template["Resources"]["PredictionFunction"]["Properties"]
    assert prediction["Role"] == {"Fn::GetAtt": ["PredictionFunctionRole", "Arn"]}
    assert prediction["Events"] == original["Resources"]["PredictionFunction"]["Properties"]["Events"]


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


def test_zip_functions_deployed_by_the_cli_predict_rides(localstack, clients, model_dir, capsys, phase):
    streams = {
        "InputStreamName": "zip_ride_events",
        "PredictionsStreamName": "zip_ride_predictions",
        "DecisionsStreamName": "zip_ride_decisions",
        "DeadLetterStreamName": "zip_ride_dead_letters",
    }
    args = ["--endpoint", localstack.endpoint, "--model-dir", str(model_dir), "--stack-name", "ride-duration-zip"]
    with phase("deploy.py --zip-functions"):
        status = deploy.main([*args, "--zip-functions", *(f"--param={k}={v}" for k, v in streams.items())])
    outputs = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert status == 0
    assert outputs["PredictionsStreamName"] == "zip_ride_predictions"
    lam = clients("lambda")
    assert lam.get_function_configuration(FunctionName=outputs["PredictionFunctionName"])["PackageType"] == "Zip"

    ride = {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": "zip-1"}
    clients("kinesis").put_record(StreamName="zip_ride_events", Data=json.dumps(ride).encode(), PartitionKey="1")
    tail = StreamTail(clients("kinesis"), "zip_ride_predictions")
    events: list[dict] = []
    wait_until(lambda: events.extend(tail.events()) or events, 90, "a prediction from the Zip function")
    assert [e["prediction"]["ride_id"] for e in events] == ["zip-1"]


@pytest.fixture
def registered_model(tmp_path) -> Iterator[str]:
    """A model logged as training logs it, registered as ride-duration version 1 with the alias champion."""
    from model_service.model.features import features_for_frame
    from model_service.model.training import build_pipeline
    from model_service.sample_data import make_trips
    from model_service.trips import add_duration

    trips = add_duration(make_trips(2000, seed=3))
    pipeline = build_pipeline("linear").fit(features_for_frame(trips), trips["duration"].to_numpy())
    with registered_champion(pipeline, tmp_path):
        yield "models:/ride-duration@champion"


def test_a_registered_model_is_resolved_copied_under_its_version_and_served_as_it(
    localstack, clients, registered_model, capsys, phase
):
    streams = {
        "InputStreamName": "resolved_ride_events",
        "PredictionsStreamName": "resolved_ride_predictions",
        "DecisionsStreamName": "resolved_ride_decisions",
        "DeadLetterStreamName": "resolved_ride_dead_letters",
        "ModelBucket": "ride-duration-resolved-models",
    }
    args = [
        "--endpoint",
        localstack.endpoint,
        "--model-uri",
        registered_model,
        "--stack-name",
        "ride-duration-resolved",
    ]
    with phase("deploy.py --model-uri (resolve step)"):
        status = deploy.main([*args, *(f"--param={k}={v}" for k, v in streams.items())])
    outputs = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert status == 0
    assert outputs["ModelUri"] == "s3://ride-duration-resolved-models/ride-duration/ride-duration/1"

    ride = {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": "resolved-1"}
    clients("kinesis").put_record(StreamName="resolved_ride_events", Data=json.dumps(ride).encode(), PartitionKey="1")
    tail = StreamTail(clients("kinesis"), "resolved_ride_predictions")
    events: list[dict] = []
    wait_until(lambda: events.extend(tail.events()) or events, 90, "a prediction from the resolved model")
    assert [(e["prediction"]["ride_id"], e["version"]) for e in events] == [("resolved-1", "1")]
