"""One local AWS stack for the session: LocalStack, a model trained by the project in S3, template.yaml deployed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from local_stack import aws as local_aws
from local_stack.server import LOCALSTACK_HOME, free_port

STACK_NAME = "ride-duration-it"


@pytest.fixture(scope="session")
def phase(request: pytest.FixtureRequest):
    """``with phase("deploy"):`` prints how long a phase of the session took, past pytest's capture."""
    capture = request.config.pluginmanager.getplugin("capturemanager")

    @contextmanager
    def timed(what: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        with capture.global_and_fixture_disabled():
            print(f"\n[integration] {what}: {time.monotonic() - started:.1f} s", flush=True)

    return timed


@pytest.fixture(scope="session")
def localstack(phase) -> Iterator:
    log_path = LOCALSTACK_HOME / "integration-test.log"
    with ExitStack() as cleanup:
        with phase("LocalStack start"):
            running = cleanup.enter_context(local_aws.running_localstack(free_port(), log_path))
        yield running


@pytest.fixture(scope="session")
def clients(localstack) -> local_aws.Clients:
    return local_aws.Clients(localstack.endpoint)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory, phase) -> dict[str, Path]:
    """The models trained by the project's own training command path, exported as MLflow directories, by target."""
    import mlflow

    from model_service.model.training import train
    from model_service.sample_data import make_trips

    root = tmp_path_factory.mktemp("training")
    with phase("train the models"), pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        make_trips(5000, seed=1).to_parquet(root / "train.parquet")
        make_trips(2000, seed=2, start="2021-02-01").to_parquet(root / "val.parquet")
        tracking = f"sqlite:///{root / 'mlflow.db'}"
        results = train(str(root / "train.parquet"), str(root / "val.parquet"), tracking_uri=tracking)
        mlflow.set_tracking_uri(tracking)
        return {
            result.recipe.target.name: Path(
                mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(root / result.recipe.target.name))
            )
            for result in results
        }


@pytest.fixture(scope="session")
def model_dir(model_dirs) -> Path:
    """The duration model."""
    return model_dirs["duration"]


def upload_models(clients: local_aws.Clients, model_dirs: dict[str, Path], **where: str) -> None:
    """Each model where the template's consumer of its target looks by default."""
    for target, directory in model_dirs.items():
        local_aws.upload_model(clients, directory, f"ride-{target}", **where)


@pytest.fixture(scope="session")
def stack(clients, model_dirs, phase) -> local_aws.DeployedStack:
    with phase("upload the models + deploy template.yaml"):
        upload_models(clients, model_dirs)
        return local_aws.deploy(clients, STACK_NAME)
