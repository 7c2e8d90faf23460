"""Load the model that ``MODEL_URI`` names, refuse what is unsafe, and say plainly why.

Where a model can live: an MLflow model directory (local or under ``s3://``),
a course-style ``model.bin`` pickle (local or ``s3://``), or an MLflow URI
(``runs:/``, ``models:/name/version``, ``models:/name@alias``), which needs
MLflow and is for the web service and batch scoring; the Lambda function gets
an ``s3://`` location that ``python -m model_service resolve`` wrote at deploy time.

What is loaded, fastest first:
- an MLflow model with a weight table (what training writes for the linear
  family): the table, with numpy alone;
- any other MLflow sklearn model: with skops, trusting only skops' defaults and
  ``TRUSTED_TYPES``, whatever the artifact's own MLmodel asks to trust. An
  artifact saved with pickle or cloudpickle, which can run any code when read,
  is refused unless MODEL_ALLOW_PICKLE opts in;
- a ``model.bin`` (any single file, whatever its name): a pickle by the
  course's own choice, refused unless MODEL_ALLOW_PICKLE opts in, like every
  pickle; MODEL_URI must then point at storage only trusted people can write
  (see the README's Security section).

An MLflow model says what it predicts in its metadata (``target.Target``); a
``model.bin`` predicts duration. Whatever loaded must then predict one ride
within its target's sane range (``smoke_test``), or the service refuses to
start, naming the URI.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np

from model_service import s3
from model_service.config import MAX_VERSION_CHARS
from model_service.errors import InvalidSetting, InvalidWeightTable, ModelLoadError, UnsafeModel, UnusableModel
from model_service.model.target import DURATION, Target
from model_service.model.weight_table import FLAVORS as WEIGHT_TABLE_FLAVORS
from model_service.model.weight_table import WeightTable

PICKLE_SUFFIXES = (".bin", ".pkl", ".pickle")

TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
"""Types skops may build beyond its own defaults: what the project's models hold (the forest's trees)."""

SMOKE_RIDE = (130, 205, 3.66)
"""The course's sample ride (PULocationID, DOLocationID, trip_distance); 12.79 minutes with its lin_reg.bin."""

logger = logging.getLogger(__name__)


class Predictor(Protocol):
    def predict(
        self, pu_location_id: np.ndarray, do_location_id: np.ndarray, trip_distance: np.ndarray
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class LoadedModel:
    predictor: Predictor
    version: str
    uri: str
    description: str
    """What serves it, for the logs: "weight table ...", or "scikit-learn <estimator>"."""
    target: Target = DURATION
    """What it predicts, from its own metadata."""


@dataclass(frozen=True)
class _Read:
    """A model as read from its files, before its smoke test."""

    predictor: Predictor
    version: str
    description: str
    target: Target = DURATION


def load_model(
    uri: str, version: str | None = None, *, allow_pickle: bool = False, tracking_uri: str | None = None
) -> LoadedModel:
    """Load and smoke-test the model at ``uri``; ``version`` (MODEL_VERSION) overrides the derived one.

    ``tracking_uri`` is the MLflow store that ``models:/`` and ``runs:/`` URIs are read from (MLflow's
    own choice when None).
    """
    try:
        read = _load(uri, allow_pickle, tracking_uri)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"Cannot load the model at MODEL_URI={uri!r}: {type(exc).__name__}: {exc}") from exc
    smoke_test(read.predictor, read.target, uri)
    served_version = version or read.version
    if len(served_version) > MAX_VERSION_CHARS:
        # Every event carries it, and the event schema holds it to this: readers would dead-letter them all.
        raise ModelLoadError(
            f"The model at MODEL_URI={uri!r} has a version of {len(served_version)} characters; events carry at"
            f" most {MAX_VERSION_CHARS} (set MODEL_VERSION)"
        )
    return LoadedModel(read.predictor, served_version, uri, read.description, read.target)


def smoke_test(predictor: Predictor, target: Target, uri: str) -> None:
    """Predict the course's sample ride: a model that cannot, or answers nonsense, must not start serving."""
    pu, do, distance = SMOKE_RIDE
    ride = f"the ride {pu} -> {do}, {distance} mi"
    try:
        answer = np.asarray(predictor.predict(np.array([pu]), np.array([do]), np.array([distance])))
    except Exception as exc:
        raise UnusableModel(
            f"The model at MODEL_URI={uri!r} loaded but cannot predict {ride}: {type(exc).__name__}: {exc}"
        ) from exc
    low, high, unit = target.low, target.high, target.unit
    if answer.shape != (1,) or not np.isfinite(answer).all() or not low <= float(answer[0]) <= high:
        raise UnusableModel(
            f"The model at MODEL_URI={uri!r} loaded but predicts {answer.tolist()!r} {unit} for {ride}, "
            f"not one {target.name} from {low:g} to {high:g} {unit}: refusing to serve it"
        )


def _load(uri: str, allow_pickle: bool, tracking_uri: str | None) -> _Read:
    if uri.startswith(("runs:/", "models:/")):
        from model_service.model import registry

        resolved = registry.resolve(uri, tracking_uri)
        with tempfile.TemporaryDirectory(prefix="model-") as tmp:
            local = registry.download(resolved, Path(tmp), tracking_uri)
            read = _load_from(_LocalFiles(local), uri, allow_pickle)
        return replace(read, version=resolved.version)
    files: _ModelFiles = _S3Files(uri) if uri.startswith("s3://") else _LocalFiles(Path(uri.removeprefix("file://")))
    return _load_from(files, uri, allow_pickle)


class _ModelFiles(Protocol):
    """A model.bin, or the files of an MLflow model directory, wherever they are."""

    def is_single_file(self) -> bool: ...

    def read(self, name: str = "") -> bytes:
        """The file ``name`` of the directory, or the single file itself for ``""``."""
        ...


class _LocalFiles:
    def __init__(self, path: Path) -> None:
        self.path = path

    def is_single_file(self) -> bool:
        return self.path.is_file()

    def read(self, name: str = "") -> bytes:
        return (self.path / name if name else self.path).read_bytes()


class _S3Files:
    """An object (``.bin``, ``.pkl``, ``.pickle``) or a prefix, read straight into memory with boto3."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        s3.split(self.uri)
        self.s3 = s3.client()

    def is_single_file(self) -> bool:
        return self.uri.endswith(PICKLE_SUFFIXES)

    def read(self, name: str = "") -> bytes:
        return s3.read(self.s3, f"{self.uri}/{name}" if name else self.uri)


def _load_from(files: _ModelFiles, uri: str, allow_pickle: bool) -> _Read:
    if files.is_single_file():
        if not allow_pickle:  # refused unread: a single file is a pickle (a course model.bin), whatever its name
            raise UnsafeModel(_pickle_refusal(uri, "it is a single file, which is read by unpickling it"))
        return _load_model_bin(files.read(), uri)
    try:
        mlmodel_text = files.read("MLmodel")
    except (FileNotFoundError, IsADirectoryError) as exc:
        if isinstance(files, _LocalFiles) and files.path.is_dir():
            raise ModelLoadError(
                f"MODEL_URI={uri!r} is a directory without an MLmodel file, so not an MLflow model"
            ) from None
        where = "no such file or directory" if isinstance(files, _LocalFiles) else f"no MLflow model there ({exc})"
        raise ModelLoadError(f"Cannot load the model at MODEL_URI={uri!r}: {where}") from None
    return _load_mlflow_dir(files, _parse_mlmodel(mlmodel_text, uri), uri, allow_pickle)


def _parse_mlmodel(text: bytes, uri: str) -> dict[str, Any]:
    import yaml

    mlmodel = yaml.safe_load(text)
    if not isinstance(mlmodel, dict) or not isinstance(mlmodel.get("flavors"), dict):
        raise ModelLoadError(f"MODEL_URI={uri!r}: its MLmodel file lists no flavors")
    return mlmodel


def _file_in_model(name: Any, uri: str) -> str:
    """A file name from MLmodel, which must stay inside the model's directory."""
    path = PurePosixPath(str(name))
    if not name or path.is_absolute() or ".." in path.parts:
        raise UnsafeModel(f"MODEL_URI={uri!r}: its MLmodel names {name!r}, which is not a file inside the model")
    return str(path)


def _load_mlflow_dir(files: _ModelFiles, mlmodel: dict[str, Any], uri: str, allow_pickle: bool) -> _Read:
    flavors = mlmodel["flavors"]
    version = str(mlmodel.get("run_id") or mlmodel.get("model_id") or mlmodel.get("model_uuid") or "unknown")
    try:
        target = Target.from_metadata(mlmodel.get("metadata"))
    except InvalidSetting as exc:
        raise ModelLoadError(f"Cannot load the model at MODEL_URI={uri!r}: {exc}") from None
    table_flavor = next((flavors[f] for f in WEIGHT_TABLE_FLAVORS if isinstance(flavors.get(f), dict)), None)
    if isinstance(table_flavor, dict):
        try:
            table = WeightTable.from_bytes(files.read(_file_in_model(table_flavor.get("data"), uri)))
        except InvalidWeightTable as exc:
            raise ModelLoadError(
                f"Cannot load the model at MODEL_URI={uri!r}: its weight table is invalid: {exc}"
            ) from None
        return _Read(table, version, "weight table (numpy)", target)
    sklearn_flavor = flavors.get("sklearn")
    if not isinstance(sklearn_flavor, dict):
        raise ModelLoadError(f"MODEL_URI={uri!r} is an MLflow model with neither a weight table nor the sklearn flavor")
    serialization = sklearn_flavor.get("serialization_format", "pickle")  # MLflow's default before skops
    pickled_with = sklearn_flavor.get("sklearn_version")
    data = files.read(_file_in_model(sklearn_flavor.get("pickled_model"), uri))
    if serialization == "skops":
        model = _load_skops(data, uri, pickled_with)
    elif serialization in ("pickle", "cloudpickle"):
        if not allow_pickle:
            raise UnsafeModel(_pickle_refusal(uri, f"it is saved with {serialization}"))
        model = _unpickle(data, uri, pickled_with)
    else:
        raise ModelLoadError(f"MODEL_URI={uri!r}: unknown sklearn serialization format {serialization!r}")
    predictor, description = _predictor_for(model, uri)
    return _Read(predictor, version, description, target)


def _pickle_refusal(uri: str, why: str) -> str:
    """The one message for every pickle refused, whichever path led to it: what it is, why, how to opt in."""
    return (
        f"Refusing to load the model at MODEL_URI={uri!r}: {why}, and unpickling runs whatever code the file "
        f"holds. This service reads MLflow models with skops or as a weight table, which run none. Serve a model "
        f"trained here (`python -m model_service train` logs it so), or, if only trusted people can write where "
        f"MODEL_URI points (a course model.bin you trust), set MODEL_ALLOW_PICKLE=true."
    )


def _load_skops(data: bytes, uri: str, pickled_with: str | None) -> Any:
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return skops.io.loads(data, trusted=TRUSTED_TYPES)
    except UntrustedTypesFoundException as exc:
        raise UnsafeModel(
            f"Refusing to load the model at MODEL_URI={uri!r}: it holds types this service does not trust "
            f"({str(exc).splitlines()[0]}). Only skops' defaults and {TRUSTED_TYPES} are trusted, whatever "
            f"the model's MLmodel asks for; if a type is safe, add it to TRUSTED_TYPES in "
            f"model_service/model/load.py."
        ) from None
    except Exception as exc:
        raise ModelLoadError(_deserialization_failure(uri, exc, pickled_with)) from exc


def _load_model_bin(data: bytes, uri: str) -> _Read:
    model = _unpickle(data, uri, None)
    predictor, description = _predictor_for(model, uri)
    return _Read(predictor, hashlib.sha256(data).hexdigest()[:12], description)


def _unpickle(data: bytes, uri: str, pickled_with: str | None) -> Any:
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        try:
            model = pickle.loads(data)
        except Exception as exc:
            raise ModelLoadError(
                _deserialization_failure(uri, exc, _pickled_sklearn_version(caught) or pickled_with)
            ) from exc
    if warned_version := _pickled_sklearn_version(caught):
        logger.warning(
            "%s was pickled with scikit-learn %s; check its predictions before serving it", uri, warned_version
        )
    return model


def _predictor_for(model: Any, uri: str) -> tuple[Predictor, str]:
    from model_service.errors import NotARideModel
    from model_service.model.sklearn_model import predictor_for

    try:
        return predictor_for(model)
    except NotARideModel as exc:
        raise UnusableModel(
            f"The model at MODEL_URI={uri!r} cannot predict rides: {exc} (the course's (DictVectorizer, model) "
            f"tuple, or a Pipeline that starts with a DictVectorizer)"
        ) from None
    except InvalidWeightTable as exc:
        raise UnusableModel(f"The model at MODEL_URI={uri!r} cannot be served: its weights: {exc}") from None


def _pickled_sklearn_version(caught: list[warnings.WarningMessage]) -> str | None:
    for w in caught:
        original = getattr(w.message, "original_sklearn_version", None)
        if original:
            return str(original)
    return None


def _deserialization_failure(uri: str, exc: Exception, pickled_with: str | None) -> str:
    import sklearn

    cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if pickled_with and pickled_with != sklearn.__version__:
        return (
            f"Cannot load the model at MODEL_URI={uri!r}: it was saved with scikit-learn {pickled_with} "
            f"and this environment has scikit-learn {sklearn.__version__}, which cannot read it ({cause}). "
            f"Fix: retrain it here with `python -m model_service train` (the new model is logged to MLflow), "
            f"or serve it from an environment pinned to scikit-learn=={pickled_with}."
        )
    return f"Cannot load the model at MODEL_URI={uri!r}: {cause}"
