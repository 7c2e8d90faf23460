"""Deploy template.yaml to a LocalStack that is already running: upload the models, create the stack.

    python -m local_stack.deploy --endpoint http://localhost:4566 \\
        --model-uri models:/ride-duration@champion --model-uri models:/ride-cost@champion
    python -m local_stack.deploy --endpoint http://localhost:4566 \\
        --model-dir export/duration --model-dir export/cost --zip-functions --param PredictionBatchSize=500

Each model goes to the consumer of its target (its metadata says which:
DurationModelUri, CostModelUri).

For the LocalStack of local_stack/docker-compose.yaml (or any LocalStack
started by hand); the tests and ``make demo`` start their own and call
``local_stack.aws`` directly. Prints the stack's outputs as KEY=VALUE lines.

``--zip-functions`` is for community LocalStack in Docker, which refuses to run
Image functions ("Container images are a Pro feature"): every function, the
nested consumers' included, is then deployed as a python3.11 Zip function of
the same handler and code, and the compose file maps that runtime to the
project's Lambda image, which holds their dependencies. Everything else in the
templates is deployed as it is.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from local_stack import aws
from model_service.errors import ServiceError

if TYPE_CHECKING:
    from model_service.model.deploy import DeployableModel
    from model_service.model.target import Target

CODE_KEY = "ride-duration-code/functions.zip"
FUNCTION_CODE = ("lambda_function.py", "decision_function.py", "score_function.py", "model_service")
"""What the Dockerfile copies into the image: the handlers and the package they import."""
ZIP_RUNTIME = "python3.11"
DEFAULT_HANDLER = "lambda_function.lambda_handler"
"""The Dockerfile's CMD, for an Image function whose template sets no ImageConfig.Command."""


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short forms (``!Ref x``) as the long forms (``{"Ref": x}``) JSON needs."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def parse_template(template: str) -> dict[str, Any]:
    """A CloudFormation template as JSON-shaped data, short forms read as long ones."""
    return yaml.load(template, Loader=_CloudFormationLoader)


def zip_function_template(template: str, code_bucket: str, code_key: str = CODE_KEY) -> dict[str, Any]:
    """The template with every Image function turned into a python3.11 Zip function of the same handler."""
    document = parse_template(template)
    for resource in document["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::Serverless::Function" or properties.get("PackageType") != "Image":
            continue
        command = properties.pop("ImageConfig", {}).get("Command") or [DEFAULT_HANDLER]
        del properties["ImageUri"]
        resource.pop("Metadata", None)  # sam build's image recipe
        properties.update(
            PackageType="Zip",
            Runtime=ZIP_RUNTIME,
            Handler=command[0],
            CodeUri={"Bucket": code_bucket, "Key": code_key},
        )
    return document


def code_zip(destination: Path) -> Path:
    """The functions' code, as the Dockerfile lays it out in the image's task root."""
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in FUNCTION_CODE:
            path = aws.PROJECT_ROOT / name
            files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            for file in files:
                archive.write(file, file.relative_to(aws.PROJECT_ROOT))
    return destination


def model_parameters(target: Target, model_uri: str, version: str | None = None) -> dict[str, str]:
    """The template parameters that give the consumer of ``target`` its model: ``DurationModelUri``, ..."""
    from model_service.model.deploy import stack_parameters

    return stack_parameters(target, "Model", model_uri, version or "")


def model_dir_target(model_dir: Path) -> Target:
    """What an MLflow model directory predicts, from its MLmodel's metadata."""
    from model_service.model.target import Target

    return Target.from_metadata(yaml.safe_load((model_dir / "MLmodel").read_text()).get("metadata"))


def publish_model(
    clients: aws.Clients, model_uri: str, bucket: str = aws.MODEL_BUCKET, prefix: str = aws.MODEL_PREFIX
) -> DeployableModel:
    """The deploy-time resolution step: ``model_uri`` (``models:/``, ``runs:/``) pinned, checked, copied to S3.

    The same as ``python -m model_service resolve --upload-to s3://bucket/prefix``
    against LocalStack; deploy with ``model_parameters`` of the result.
    """
    from model_service.config import Settings
    from model_service.model.deploy import prepare_deployment

    settings = Settings.from_env()
    s3 = clients("s3")
    s3.create_bucket(Bucket=bucket)
    return prepare_deployment(
        model_uri,
        upload_to=f"s3://{bucket}/{prefix}",
        s3=s3,
        allow_pickle=settings.model_allow_pickle,
        tracking_uri=settings.tracking_uri,
    )


def deploy_zip_functions(
    clients: aws.Clients, stack_name: str, parameters: dict[str, str], workdir: Path
) -> aws.DeployedStack:
    bucket = parameters.get("ModelBucket", aws.MODEL_BUCKET)
    clients("s3").upload_file(str(code_zip(workdir / "functions.zip")), bucket, CODE_KEY)

    def zipped(template: str) -> str:
        # Block-style YAML, so the nested templates' Location lines stay recognisable to aws.package.
        return yaml.safe_dump(zip_function_template(template, bucket), sort_keys=False)

    return aws.deploy(clients, stack_name, parameters, template_body=zipped(aws.TEMPLATE.read_text()), nested=zipped)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="http://localhost:4566", help="LocalStack's URL")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--model-dir", type=Path, action="append", help="an MLflow model directory to upload (repeatable)"
    )
    model.add_argument(
        "--model-uri",
        action="append",
        help="an MLflow model URI (models:/, runs:/) in MLFLOW_TRACKING_URI's store, resolved and uploaded"
        " (repeatable: one per target)",
    )
    parser.add_argument("--stack-name", default="ride-duration", help="CloudFormation stack name")
    parser.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="template parameter override (repeatable)"
    )
    parser.add_argument(
        "--zip-functions", action="store_true", help="deploy the functions as Zip functions (community LocalStack)"
    )
    args = parser.parse_args(argv)
    if bad := [p for p in args.param if "=" not in p]:
        parser.error(f"--param takes KEY=VALUE, not {', '.join(bad)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parameters = dict(p.split("=", 1) for p in args.param)
    clients = aws.Clients(args.endpoint)
    bucket = parameters.get("ModelBucket", aws.MODEL_BUCKET)
    prefix = parameters.get("ModelPrefix", aws.MODEL_PREFIX)
    with tempfile.TemporaryDirectory(prefix="deploy-") as tmp:
        workdir = Path(tmp)
        models: dict[str, str] = {}
        for uri in args.model_uri or ():
            try:
                model = publish_model(clients, uri, bucket, prefix)
            except ServiceError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            models |= model_parameters(model.target, model.model_uri, model.version)
            print(f"model {uri} (version {model.version}) uploaded to {model.model_uri}", file=sys.stderr)
        for model_dir in args.model_dir or ():
            if not (model_dir / "MLmodel").is_file():
                print(f"error: {model_dir} is not an MLflow model directory (no MLmodel file)", file=sys.stderr)
                return 2
            target = model_dir_target(model_dir)
            model_uri = aws.upload_model(clients, model_dir, f"ride-{target.name}", bucket, prefix)
            models |= model_parameters(target, model_uri)
            print(f"{target.name} model uploaded to {model_uri}", file=sys.stderr)
        parameters = {**models, **parameters}
        if args.zip_functions:
            stack = deploy_zip_functions(clients, args.stack_name, parameters, workdir)
        else:
            stack = aws.deploy(clients, args.stack_name, parameters)
    for key, value in sorted(stack.outputs.items()):
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
