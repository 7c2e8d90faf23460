"""``python -m model_service resolve``: an MLflow URI pinned to a version, checked, copied where the function reads."""

import boto3
import pytest

from model_service.cli import main
from model_service.model.load import load_model
from tests.factories import RunsCodeWhenUnpickled


def outputs(capsys) -> dict[str, str]:
    return dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())


@pytest.fixture
def bucket(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    return s3


def keys(s3, prefix=""):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket="models", Prefix=prefix).get("Contents", []))


def test_an_alias_resolves_to_the_version_it_points_to_and_its_artifact_location(registry, capsys):
    assert main(["resolve", "models:/ride-duration@champion"]) == 0
    out = outputs(capsys)
    assert out["MODEL_VERSION"] == "1"
    assert load_model(out["MODEL_URI"]).description == "weight table (numpy)"


def test_upload_copies_the_version_under_the_prefix_and_prints_its_s3_uri(registry, bucket, capsys):
    assert main(["resolve", "models:/ride-duration@champion", "--upload-to", "s3://models/ride-duration"]) == 0
    out = outputs(capsys)
    assert out == {"MODEL_URI": "s3://models/ride-duration/ride-duration/1", "MODEL_VERSION": "1"}
    assert {"ride-duration/ride-duration/1/MLmodel", "ride-duration/ride-duration/1/weight_table.npz"} <= set(
        keys(bucket)
    )
    assert load_model(out["MODEL_URI"], out["MODEL_VERSION"]).version == "1"


def test_upload_leaves_no_file_of_an_earlier_upload_beside_the_model(registry, bucket, capsys):
    bucket.put_object(Bucket="models", Key="ride-duration/ride-duration/1/stale.npz", Body=b"old")
    assert main(["resolve", "models:/ride-duration/1", "--upload-to", "s3://models/ride-duration/"]) == 0
    assert "ride-duration/ride-duration/1/stale.npz" not in keys(bucket)


def test_a_runs_uri_resolves_to_its_run_id(registry, bucket, capsys):
    assert main(["resolve", f"runs:/{registry}/model", "--upload-to", "s3://models/ride-duration"]) == 0
    out = outputs(capsys)
    assert out == {"MODEL_URI": f"s3://models/ride-duration/runs/{registry}/model", "MODEL_VERSION": registry}


def test_a_model_the_function_would_refuse_is_refused_before_anything_is_copied(
    registry, bucket, fitted_pipeline, capsys
):
    import mlflow.sklearn

    with mlflow.start_run():
        mlflow.sklearn.log_model(
            fitted_pipeline,
            name="model",
            serialization_format="pickle",
            registered_model_name="pickled",
            pip_requirements=[],
        )
    assert main(["resolve", "models:/pickled/1", "--upload-to", "s3://models/ride-duration"]) == 2
    assert "MODEL_ALLOW_PICKLE=true" in capsys.readouterr().err
    assert keys(bucket) == []


def test_an_unknown_model_is_a_clear_error(registry, capsys):
    assert main(["resolve", "models:/no-such-model/1"]) == 2
    assert "Cannot resolve MODEL_URI='models:/no-such-model/1'" in capsys.readouterr().err


def test_a_uri_that_is_not_mlflows_is_a_clear_error(capsys):
    assert main(["resolve", "s3://models/ride-duration/model"]) == 2
    assert "not an MLflow model URI" in capsys.readouterr().err


def test_a_pickle_logged_to_a_run_is_refused_unread_on_the_deployers_machine(registry, bucket, tmp_path, capsys):
    import pickle

    import mlflow

    evidence = tmp_path / "code-ran"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(RunsCodeWhenUnpickled(evidence)))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "evil.pkl"))

    code = main(["resolve", f"runs:/{run.info.run_id}/evil.pkl", "--upload-to", "s3://models/ride-duration"])

    assert code == 2
    assert "MODEL_ALLOW_PICKLE=true" in capsys.readouterr().err
    assert not evidence.exists()
    assert keys(bucket) == []
