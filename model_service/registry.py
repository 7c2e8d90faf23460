"""MLflow model URIs (``models:/``, ``runs:/``) to the files and the version they name, with MLflow.

For deploy time, the web service and batch scoring, never for the Lambda
function: ``python -m model_service resolve --upload-to s3://bucket/prefix``
pins the URI to one version, checks that the model loads the way the function
will load it, copies it under the deployment's model prefix and prints the
``MODEL_URI`` (``s3://``) and ``MODEL_VERSION`` to deploy with. The function
then reads the copy with boto3, and MLflow stays out of its image.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from model_service.errors import ModelLoadError
from model_service.model_loader import load_model


@dataclass(frozen=True)
class ResolvedModel:
    uri: str
    """The URI as given, e.g. ``models:/ride-duration@champion``."""
    pinned_uri: str
    """The same model, immune to an alias or "latest" moving: ``models:/ride-duration/3``, ``runs:/<id>/model``."""
    artifact_uri: str
    """Where MLflow keeps its files (``s3://...``, ``file://...``, ``mlflow-artifacts:/...``)."""
    version: str
    """The registered version, else the run id (``runs:/``) or the logged model id (``models:/m-...``)."""
    key: str
    """Its place under a deployment's model prefix: ``<name>/<version>``, ``runs/<run>/<path>`` or ``logged/<id>``."""


def resolve(uri: str, tracking_uri: str | None = None) -> ResolvedModel:
    """Ask the tracking server (MLFLOW_TRACKING_URI unless given) which model ``uri`` names right now."""
    import mlflow
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    client = mlflow.MlflowClient(tracking_uri)
    try:
        if uri.startswith("runs:/"):
            run_id, _, path = urlparse(uri).path.lstrip("/").partition("/")
            if not run_id or not path:
                raise ValueError("a runs:/ URI is runs:/<run_id>/<path>, e.g. runs:/<run_id>/model")
            return ResolvedModel(uri, uri, _run_model_location(client, run_id, path), run_id, f"runs/{run_id}/{path}")
        if uri.startswith("models:/"):
            name_and_version = get_model_name_and_version(client, uri)
            if len(name_and_version) == 1:
                (model_id,) = name_and_version
                location = client.get_logged_model(model_id).artifact_location
                return ResolvedModel(uri, f"models:/{model_id}", location, model_id, f"logged/{model_id}")
            name, version = name_and_version
            location = client.get_model_version_download_uri(name, version)
            return ResolvedModel(uri, f"models:/{name}/{version}", location, str(version), f"{name}/{version}")
    except Exception as exc:
        raise ModelLoadError(f"Cannot resolve MODEL_URI={uri!r}: {type(exc).__name__}: {exc}") from exc
    raise ValueError(f"{uri!r} is not an MLflow model URI (models:/... or runs:/...)")


def _run_model_location(client: Any, run_id: str, path: str) -> str:
    """The artifact location of the model a run logged as ``path`` (MLflow 3 keeps it as a logged model)."""
    run = client.get_run(run_id)
    for output in (run.outputs.model_outputs if run.outputs else None) or []:
        model = client.get_logged_model(output.model_id)
        if model.name == path:
            return str(model.artifact_location)
    return f"{run.info.artifact_uri.rstrip('/')}/{path}"


def download(resolved: ResolvedModel, destination: Path, tracking_uri: str | None = None) -> Path:
    """The model's files in a local directory, downloaded from its pinned URI."""
    import mlflow

    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=resolved.pinned_uri, dst_path=str(destination), tracking_uri=tracking_uri
        )
    )


def upload(model_dir: Path, destination: str, s3: Any) -> str:
    """Copy a model directory to ``destination`` (``s3://bucket/prefix``), which then holds exactly its files.

    Objects left under the prefix by an earlier upload that are not part of
    this model are deleted after the upload, so a stale file can never be
    served beside the new ones.
    """
    bucket, _, prefix = destination.removeprefix("s3://").rstrip("/").partition("/")
    if not destination.startswith("s3://") or not bucket or not prefix:
        raise ValueError(f"upload to s3://bucket/prefix, not {destination!r}")
    uploaded = set()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(model_dir).as_posix()}"
        s3.upload_file(str(path), bucket, key)
        uploaded.add(key)
    stale = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
        for obj in page.get("Contents", [])
        if obj["Key"] not in uploaded
    ]
    for start in range(0, len(stale), 1000):  # DeleteObjects takes at most 1000 keys
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in stale[start : start + 1000]]})
    return f"s3://{bucket}/{prefix}"


@dataclass(frozen=True)
class DeployableModel:
    model_uri: str
    """What the function's MODEL_URI must be: the uploaded copy, or MLflow's own location without an upload."""
    version: str
    """What its MODEL_VERSION must be: the resolved version."""
    description: str
    """What serves it (a weight table, or scikit-learn), as the function will load it."""
    resolved: ResolvedModel


def prepare_deployment(
    uri: str, *, upload_to: str | None, s3: Any = None, allow_pickle: bool = False, tracking_uri: str | None = None
) -> DeployableModel:
    """Resolve ``uri``, check the model loads and predicts as the function will load it, and copy it if asked.

    The copy goes to ``<upload_to>/<resolved.key>``: one prefix per version, so
    a deployment can roll back by pointing MODEL_URI at the previous one.
    """
    resolved = resolve(uri, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="resolve-") as tmp:
        local = download(resolved, Path(tmp), tracking_uri)
        loaded = load_model(str(local), resolved.version, allow_pickle=allow_pickle)
        model_uri = upload(local, f"{upload_to.rstrip('/')}/{resolved.key}", s3) if upload_to else resolved.artifact_uri
    return DeployableModel(model_uri, resolved.version, loaded.description, resolved)
