"""Each deployment's Pipfile category holds every package its entry points import, and the Lambda's holds no more.

Each entry point runs in a fresh interpreter, as a new container would; the
third-party modules it ends up with are mapped to their distributions and
checked against that deployment's categories in Pipfile.lock.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"scikit-learn", "scipy", "mlflow", "mlflow-skinny", "pandas", "pyarrow", "skops"}
"""What the stream functions must not import to serve the course's model family."""

OPTIONAL = {
    "setuptools": "its distutils-precedence.pth, which site runs at every start in a virtualenv",
    "cloudpickle": "pyarrow.lib, when installed (else pickle)",
    "charset-normalizer": "numpy.f2py, when installed",
    "pytest": "sklearn.utils._testing, when installed",
    "pluggy": "pytest",
    "iniconfig": "pytest",
    "pygments": "pytest",
    "tqdm": "mlflow.genai's simulators, when installed",
}
"""Imported only because this test environment has them: each importer goes on without them."""
SKLEARN_OPTIONAL = {"pandas": "sklearn.utils.fixes, when installed", "pyarrow": "pandas"}

REPORT_DISTRIBUTIONS = """
import importlib.metadata, json, sys
sys.path.insert(0, sys.argv[1])
exec(sys.argv[2])
owners = importlib.metadata.packages_distributions()
tops = {name.split(".")[0] for name in list(sys.modules)} - set(sys.stdlib_module_names)
print(json.dumps({top: owners[top] for top in sorted(tops) if top in owners}))
"""


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(*categories: str) -> set[str]:
    lock = json.loads((ROOT / "Pipfile.lock").read_text())
    return {normalized(name) for category in categories for name in lock[category]}


class Imported(dict):
    """Top-level module -> the distributions that install it (several for mlflow, mlflow-skinny, mlflow-tracing)."""

    @property
    def distributions(self) -> set[str]:
        return {d for owners in self.values() for d in owners}


def assert_covered(imported: Imported, *categories: str, optional: dict[str, str] = OPTIONAL) -> None:
    allowed = locked(*categories) | set(optional)
    missing = {top: owners for top, owners in imported.items() if not allowed & set(owners)}
    assert not missing, f"imported but in none of {categories}: {missing}"


def imported_distributions(code: str, **env: str) -> Imported:
    result = subprocess.run(
        [sys.executable, "-c", REPORT_DISTRIBUTIONS, str(ROOT), code],
        env={**os.environ, "TEST_RUN": "true", "POWERTOOLS_LOG_LEVEL": "WARNING", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    owners = json.loads(result.stdout.splitlines()[-1])
    return Imported({top: {normalized(d) for d in dists} for top, dists in owners.items()})


def lambda_images() -> dict[str, tuple[list[str], list[str]]]:
    """Each Dockerfile target that installs categories: (the categories, the ``*_function.py`` handlers it copies)."""
    images = {}
    for stage in re.split(r"^FROM ", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)[1:]:
        name = re.match(r"\S+ AS (\S+)", stage)
        categories = re.search(r'--categories "([^"]*)"', stage)
        if name and categories:
            handlers = re.findall(r"\b(\w+_function)\.py\b", " ".join(re.findall(r"^COPY .*$", stage, re.MULTILINE)))
            images[name[1]] = ([c for c in categories[1].split() if not c.startswith("$")], handlers)
    return images


IMAGES = lambda_images()
IMAGE_HANDLERS = [(image, handler) for image, (_, handlers) in IMAGES.items() for handler in handlers]


def test_every_handler_is_in_an_image():
    assert {handler for _, handler in IMAGE_HANDLERS} == {path.stem for path in ROOT.glob("*_function.py")}


@pytest.mark.parametrize(("image", "handler"), IMAGE_HANDLERS)
def test_every_handler_serves_a_trained_model_with_only_the_categories_its_image_installs(
    image, handler, mlflow_model_dir, cost_model_dir
):
    models = {"MODEL_URI": str(mlflow_model_dir), "MODEL_URIS": f"{mlflow_model_dir},{cost_model_dir}"}
    imported = imported_distributions(f"import {handler}", **models)
    assert_covered(imported, *IMAGES[image][0])


def test_the_stream_functions_image_installs_nothing_heavy():
    """With the test above, the prediction and decision functions import no scikit-learn, MLflow or pandas."""
    assert IMAGES["lambda"][1] == ["lambda_function", "decision_function"]
    assert not locked(*IMAGES["lambda"][0]) & HEAVY
    assert not set(OPTIONAL) & HEAVY


def test_a_forest_needs_the_sklearn_category_on_top(forest_model_dir):
    imported = imported_distributions("import lambda_function", MODEL_URI=str(forest_model_dir))
    assert_covered(imported, "lambda", "sklearn", optional=OPTIONAL | SKLEARN_OPTIONAL)
    assert "scikit-learn" in imported.distributions


def test_batch_scoring_needs_the_batch_category_on_top(mlflow_model_dir):
    code = (
        "import model_service.batch.score, model_service.service;"
        f"model_service.service.PredictionService.load({str(mlflow_model_dir)!r})"
    )
    assert_covered(imported_distributions(code), "lambda", "batch")


@pytest.mark.parametrize(
    "extra",
    [
        "mlflow.artifacts, mlflow.store.artifact.utils.models, model_service.model.registry",  # models:/ and runs:/
        "model_service.model.sklearn_model, skops.io",  # a model that is not a weight table
    ],
    ids=["mlflow client", "scikit-learn"],
)
def test_the_web_service_and_what_it_loads_models_with_need_the_web_category_alone(extra):
    # gunicorn, its config (which brings in its worker class, gevent's), the app, and what loads the model.
    server = "import gunicorn.app.wsgiapp, runpy; runpy.run_path('gunicorn.conf.py')"
    imported = imported_distributions(f"{server}; import model_service.web, {extra}")
    assert_covered(imported, "web", optional=OPTIONAL | SKLEARN_OPTIONAL)
