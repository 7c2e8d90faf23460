"""Load the model that ``MODEL_URI`` names, and say plainly why when it cannot be.

One setting covers every place a model lives: an MLflow URI (``runs:/``,
``models:/name/version``, ``models:/name@alias``), an MLflow model directory
(local or under ``s3://``), or a course-style ``model.bin`` pickle (local or
``s3://``). MLflow is imported only for MLflow models, so a Lambda serving a
``model.bin`` never pays for it at cold start.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from model_service.errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np

    from model_service.features import Features

PICKLE_SUFFIXES = (".bin", ".pkl", ".pickle")

logger = logging.getLogger(__name__)


class Predictor(Protocol):
    def predict(self, features: list[Features]) -> np.ndarray: ...


class VectorizerAndRegressor:
    """The course's ``model.bin`` tuple ``(DictVectorizer, regressor)`` as one predictor."""

    def __init__(self, vectorizer: Any, regressor: Any) -> None:
        self.vectorizer = vectorizer
        self.regressor = regressor

    def predict(self, features: list[Features]) -> np.ndarray:
        return self.regressor.predict(self.vectorizer.transform(features))


@dataclass(frozen=True)
class LoadedModel:
    predictor: Predictor
    version: str
    uri: str


def load_model(uri: str, version: str | None = None) -> LoadedModel:
    """Load the model at ``uri``; ``version`` (MODEL_VERSION) overrides the derived one."""
    try:
        predictor, derived_version = _load(uri)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"Cannot load the model at MODEL_URI={uri!r}: {type(exc).__name__}: {exc}") from exc
    return LoadedModel(predictor=predictor, version=version or derived_version, uri=uri)


def _load(uri: str) -> tuple[Predictor, str]:
    if uri.startswith(("runs:/", "models:/")):
        return _load_mlflow_registry_uri(uri)
    if uri.startswith("s3://"):
        with tempfile.TemporaryDirectory(prefix="model-") as tmp:
            local = _download_s3(uri, Path(tmp))
            return _load_local(local, uri)
    return _load_local(Path(uri.removeprefix("file://")), uri)


def _load_local(path: Path, uri: str) -> tuple[Predictor, str]:
    if path.is_file():
        return _load_pickle(path, uri)
    if (path / "MLmodel").is_file():
        return _load_mlflow_dir(path, uri)
    if path.is_dir():
        raise ModelLoadError(f"MODEL_URI={uri!r} is a directory without an MLmodel file, so not an MLflow model")
    raise ModelLoadError(f"MODEL_URI={uri!r}: no such file or directory")


def _load_pickle(path: Path, uri: str) -> tuple[Predictor, str]:
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            with path.open("rb") as f:
                loaded = pickle.load(f)
        except Exception as exc:
            raise ModelLoadError(_unpickle_failure(uri, exc, _pickled_sklearn_version(caught))) from exc
    pickled_with = _pickled_sklearn_version(caught)
    if pickled_with:
        logger.warning(
            "%s was pickled with scikit-learn %s; check its predictions before serving it", uri, pickled_with
        )
    if not (isinstance(loaded, tuple) and len(loaded) == 2 and hasattr(loaded[0], "transform")):
        raise ModelLoadError(
            f"MODEL_URI={uri!r} holds a {type(loaded).__name__}, not the course's (DictVectorizer, model) tuple"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return VectorizerAndRegressor(*loaded), digest


def _pickled_sklearn_version(caught: list[warnings.WarningMessage]) -> str | None:
    for w in caught:
        original = getattr(w.message, "original_sklearn_version", None)
        if original:
            return str(original)
    return None


def _unpickle_failure(uri: str, exc: Exception, pickled_with: str | None) -> str:
    import sklearn

    cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if pickled_with and pickled_with != sklearn.__version__:
        return (
            f"Cannot load the model at MODEL_URI={uri!r}: it was pickled with scikit-learn {pickled_with} "
            f"and this environment has scikit-learn {sklearn.__version__}, which cannot read it ({cause}). "
            f"Fix: retrain it here with `python -m model_service train` (the new model is logged to MLflow), "
            f"or serve it from an environment pinned to scikit-learn=={pickled_with}."
        )
    return f"Cannot load the model at MODEL_URI={uri!r}: {cause}"


def _read_mlmodel(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((path / "MLmodel").read_text()) or {}


def _load_mlflow_dir(path: Path, uri: str) -> tuple[Predictor, str]:
    mlmodel = _read_mlmodel(path)
    sklearn_flavor = mlmodel.get("flavors", {}).get("sklearn")
    if sklearn_flavor is None:
        raise ModelLoadError(f"MODEL_URI={uri!r} is an MLflow model without the sklearn flavor")
    import mlflow.sklearn

    try:
        predictor = mlflow.sklearn.load_model(str(path))
    except Exception as exc:
        raise ModelLoadError(_unpickle_failure(uri, exc, sklearn_flavor.get("sklearn_version"))) from exc
    version = mlmodel.get("run_id") or mlmodel.get("model_id") or mlmodel.get("model_uuid") or "unknown"
    return predictor, str(version)


def _load_mlflow_registry_uri(uri: str) -> tuple[Predictor, str]:
    import mlflow

    with tempfile.TemporaryDirectory(prefix="model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        predictor, version = _load_mlflow_dir(local, uri)
    if uri.startswith("models:/"):
        from mlflow.store.artifact.utils.models import get_model_name_and_version

        _, version = get_model_name_and_version(mlflow.MlflowClient(), uri)
    return predictor, str(version)


def _download_s3(uri: str, dest: Path) -> Path:
    """Fetch one object, or every object under a prefix (an MLflow model directory)."""
    import boto3

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    if key.endswith(PICKLE_SUFFIXES):
        target = dest / Path(key).name
        s3.download_file(bucket, key, str(target))
        return target
    prefix = key.rstrip("/") + "/"
    found = False
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix) :]
            if not relative or relative.endswith("/"):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(target))
            found = True
    if not found:
        raise ModelLoadError(f"MODEL_URI={uri!r}: no objects under s3://{bucket}/{prefix}")
    return dest
