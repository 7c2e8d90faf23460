"""The local AWS stack as tests and the demo use it: LocalStack up, models in S3, template deployed.

Standard library + boto3, importable from the project's environment. The same
``template.yaml`` as production is deployed with CloudFormation (LocalStack
runs the SAM transform); only parameters are overridden.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from local_stack import server
from model_service.model.deploy import CAPABILITIES, failure_reasons

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = PROJECT_ROOT / "template.yaml"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": REGION}
IMAGE_URI = "000000000000.dkr.ecr.us-east-1.amazonaws.com/ride-duration:local"
"""Never pulled: the local-process executor runs the image's handler from the project tree."""
MODEL_BUCKET = "ride-duration-models"
MODEL_PREFIX = "ride-duration"
MODEL_WRITER_ARN = "arn:aws:iam::000000000000:root"
"""LocalStack's default caller, which uploads the models: the template's ModelWriterArns."""
TEMPLATE_BUCKET = "ride-duration-deploy"
"""Where deploy puts the template, as sam deploy puts it in its own bucket."""


def client_environment(endpoint: str) -> dict[str, str]:
    """The environment that points boto3, and so every command of the project, at ``endpoint``."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
    }


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        if result := condition():
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@contextmanager
def running_localstack(port: int = 4566, log_path: Path | None = None) -> Iterator[server.LocalStack]:
    """LocalStack whose Lambda functions run on this interpreter from the project tree."""
    env = {"LOCAL_LAMBDA_PYTHON": sys.executable, "LOCAL_LAMBDA_IMAGE_CODE_ROOT": str(PROJECT_ROOT)}
    with server.start(env, port=port, log_path=log_path) as stack:
        yield stack


class Clients:
    """boto3 clients of one endpoint, each made once."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    @functools.cache  # noqa: B019 - one cache per Clients, which lives as long as its stack
    def __call__(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, **CREDENTIALS)


def upload_model(
    clients: Clients, model_dir: Path, name: str, bucket: str = MODEL_BUCKET, prefix: str = MODEL_PREFIX
) -> str:
    """Copy an MLflow model directory to ``s3://bucket/prefix/<name>/model`` and return that MODEL_URI.

    With the registered names (``ride-duration``, ``ride-cost``), where the
    template's consumers look when no model URI is given.
    """
    s3 = clients("s3")
    s3.create_bucket(Bucket=bucket)
    for path in sorted(model_dir.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{name}/model/{path.relative_to(model_dir)}")
    return f"s3://{bucket}/{prefix}/{name}/model"


@dataclass(frozen=True)
class DeployedStack:
    name: str
    outputs: dict[str, str]

    @property
    def input_stream(self) -> str:
        return self.outputs["InputStreamName"]

    @property
    def predictions_stream(self) -> str:
        return self.outputs["PredictionsStreamName"]

    @property
    def decisions_stream(self) -> str:
        return self.outputs["DecisionsStreamName"]

    @property
    def dead_letter_stream(self) -> str:
        return self.outputs["DeadLetterStreamName"]

    @property
    def duration_function(self) -> str:
        return self.outputs["DurationFunctionName"]

    @property
    def cost_function(self) -> str:
        return self.outputs["CostFunctionName"]

    @property
    def stream_functions(self) -> tuple[str, ...]:
        """Every function with an event source: the model consumers and the decision function."""
        return (self.duration_function, self.cost_function, self.decision_function)

    @property
    def decision_function(self) -> str:
        return self.outputs["DecisionFunctionName"]


def upload_template(clients: Clients, stack_name: str, body: str, name: str = "template.yaml") -> str:
    """Put a template in S3 and return its URL, as ``sam deploy`` does.

    CloudFormation takes at most 51,200 bytes as a TemplateBody; a template
    in S3 may be 1 MB, and template.yaml, with its comments, is past the first.
    """
    s3 = clients("s3")
    s3.create_bucket(Bucket=TEMPLATE_BUCKET)
    key = f"{stack_name}/{name}"
    s3.put_object(Bucket=TEMPLATE_BUCKET, Key=key, Body=body.encode())
    return f"{clients.endpoint}/{TEMPLATE_BUCKET}/{key}"


NESTED_LOCATION = re.compile(r"^(?P<indent>\s+Location:\s+)(?P<path>stacks/[\w.-]+\.yaml)\s*$", re.MULTILINE)
"""A nested application's template given as a file of this repository, as template.yaml gives the consumers'."""


def package(clients: Clients, stack_name: str, body: str, nested: Callable[[str], str] = lambda text: text) -> str:
    """Upload the template and the nested templates it names by path, pointing it at their copies; its URL.

    What ``sam deploy`` (``sam package``) does for an AWS::Serverless::Application
    whose Location is a local file. ``nested`` may rewrite each nested template first.
    """

    def uploaded(match: re.Match[str]) -> str:
        path = match["path"]
        url = upload_template(clients, stack_name, nested((PROJECT_ROOT / path).read_text()), path)
        return f"{match['indent']}{url}"

    return upload_template(clients, stack_name, NESTED_LOCATION.sub(uploaded, body))


def deploy(
    clients: Clients,
    stack_name: str,
    parameters: dict[str, str] | None = None,
    timeout: float = 180,
    template_body: str | None = None,
    nested: Callable[[str], str] = lambda text: text,
    update: bool = False,
) -> DeployedStack:
    """Create the stack from template.yaml (or a variant of it) and wait; fail with the events that say why.

    ``nested`` may rewrite each nested template before it is uploaded. With
    ``update``, the existing stack is updated to the template instead.
    """
    cfn = clients("cloudformation")
    overrides = {
        "ImageUri": IMAGE_URI,
        "ScoringImageUri": IMAGE_URI,
        "ModelBucket": MODEL_BUCKET,
        "ModelPrefix": MODEL_PREFIX,
        "ModelWriterArns": MODEL_WRITER_ARN,
        **(parameters or {}),
    }
    (cfn.update_stack if update else cfn.create_stack)(
        StackName=stack_name,
        TemplateURL=package(clients, stack_name, template_body or TEMPLATE.read_text(), nested),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in overrides.items()],
        Capabilities=CAPABILITIES,
    )

    def settled() -> dict | None:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

    stack = wait_until(settled, timeout, f"stack {stack_name} to deploy", interval=0.5)
    if stack["StackStatus"] != ("UPDATE_COMPLETE" if update else "CREATE_COMPLETE"):
        raise RuntimeError(f"stack {stack_name} is {stack['StackStatus']}: {failure_reasons(cfn, stack_name)}")
    deployed = DeployedStack(stack_name, {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])})
    wait_for_event_sources(clients, deployed)
    return deployed


def move_live_alias(
    clients: Clients, function: str, model_uri: str, model_version: str, previous_weight: float = 0.0
) -> str:
    """Publish a version of ``function`` serving this model and move its ``live`` alias to it; its number.

    What a stack update does on AWS (FunctionVersion replaced, LiveAlias moved),
    or CodeDeploy with ``previous_weight`` of the batches left on the version
    the alias leaves. LocalStack's CloudFormation cannot: its nested-stack,
    alias and version resources have no update. So the local stack's model
    changes go through the Lambda API, the same calls, and only they.
    """
    variables = clients("lambda").get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    variables = {**variables, "MODEL_URI": model_uri, "MODEL_VERSION": model_version}
    return set_live_environment(clients, function, variables, previous_weight)


def set_live_environment(
    clients: Clients, function: str, variables: dict[str, str], previous_weight: float = 0.0
) -> str:
    """Give ``function``'s event sources this environment: a version published with it, the ``live`` alias moved.

    The event source mappings invoke the alias, so a change to the function's
    own ($LATEST) configuration alone reaches no stream.
    """
    lam = clients("lambda")
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    wait_until(
        lambda: lam.get_function_configuration(FunctionName=function).get("LastUpdateStatus") == "Successful",
        60,
        f"{function}'s configuration to update",
    )
    leaving = lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"]
    description = f"{variables.get('MODEL_VERSION', '')} {variables.get('MODEL_URI', '')}"[:256]
    version = lam.publish_version(FunctionName=function, Description=description)["Version"]
    if not previous_weight:
        lam.update_alias(FunctionName=function, Name="live", FunctionVersion=version, RoutingConfig={})
        return str(version)
    # LocalStack's UpdateAlias fails on any RoutingConfig (its provider calls _create_routing_config_model without
    # the version); CreateAlias takes one. Between the two calls the event source's invocations fail and are retried.
    routing = {"AdditionalVersionWeights": {leaving: previous_weight}}
    lam.delete_alias(FunctionName=function, Name="live")
    lam.create_alias(FunctionName=function, Name="live", FunctionVersion=version, RoutingConfig=routing)
    return str(version)


def wait_for_event_sources(clients: Clients, stack: DeployedStack, timeout: float = 60) -> None:
    """The stream subscriptions start asynchronously; records put before they poll still count (TRIM_HORIZON)."""
    lam = clients("lambda")

    def enabled() -> bool:
        mappings = [
            m
            for function in stack.stream_functions
            for m in lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
        ]
        return len(mappings) == len(stack.stream_functions) and all(m["State"] == "Enabled" for m in mappings)

    wait_until(enabled, timeout, "the event source mappings to be enabled", interval=0.5)
