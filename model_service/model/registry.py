"""Reading the MLflow registry: a model URI (``models:/``, ``runs:/``) to the version and files it names now.

For the web service, batch scoring and deploy time (``deploy``), never for
the Lambda function, which reads an ``s3://`` copy with boto3 so that MLflow
stays out of its image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from model_service.errors import InvalidSetting, ModelLoadError


@dataclass(frozen=True)
class ResolvedModel:
    uri: str
    """The URI as given, e.g. ``models:/ride-duration@champion``."""
    artifact_uri: str
    """Where MLflow keeps this version's files (``s3://...``, ``file://...``, ``mlflow-artifacts:/...``),
    immune to an alias or "latest" moving."""
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
                raise InvalidSetting("a runs:/ URI is runs:/<run_id>/<path>, e.g. runs:/<run_id>/model")
            return ResolvedModel(uri, _run_model_location(client, run_id, path), run_id, f"runs/{run_id}/{path}")
        if uri.startswith("models:/"):
            name_and_version = get_model_name_and_version(client, uri)
            if len(name_and_version) == 1:
                (model_id,) = name_and_version
                location = client.get_logged_model(model_id).artifact_location
                return ResolvedModel(uri, location, model_id, f"logged/{model_id}")
            name, version = name_and_version
            location = client.get_model_version_download_uri(name, version)
            return ResolvedModel(uri, location, str(version), f"{name}/{version}")
    except Exception as exc:
        raise ModelLoadError(f"Cannot resolve MODEL_URI={uri!r}: {type(exc).__name__}: {exc}") from exc
    raise InvalidSetting(f"{uri!r} is not an MLflow model URI (models:/... or runs:/...)")


def _run_model_location(client: Any, run_id: str, path: str) -> str:
    """The artifact location of the model a run logged as ``path`` (MLflow 3 keeps it as a logged model)."""
    run = client.get_run(run_id)
    for output in (run.outputs.model_outputs if run.outputs else None) or []:
        model = client.get_logged_model(output.model_id)
        if model.name == path:
            return str(model.artifact_location)
    return f"{run.info.artifact_uri.rstrip('/')}/{path}"


def download(resolved: ResolvedModel, destination: Path, tracking_uri: str | None = None) -> Path:
    """The model's files in a local directory, downloaded from where MLflow keeps them.

    From ``artifact_uri``, not the ``models:/`` URI: MLflow reads a ``models:/`` URI
    from its process-wide registry whatever store it is given, so the model
    ``resolve`` found in ``tracking_uri`` could be swapped for another's.
    """
    import mlflow

    return Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=resolved.artifact_uri, dst_path=str(destination), tracking_uri=tracking_uri
        )
    )
