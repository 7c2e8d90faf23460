"""Deploying a model: pin its MLflow URI to one version, check it serves, and copy it where the functions read it.

``python -m model_service resolve --upload-to s3://bucket/prefix`` runs
``prepare_deployment``: the URI is resolved (``registry``), the model is
loaded the way the function will load it (``load``), copied under the
deployment's model prefix, one prefix per version, and the ``MODEL_URI``
(``s3://``) and ``MODEL_VERSION`` to deploy with are printed.

``challenge``, ``promote`` and ``rollback`` then hand the result to the
running stack: ``redeploy`` updates its parameters (``stack_parameters``),
the template and every other parameter as they are.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from model_service import s3 as s3_location
from model_service.errors import ModelUploadFailed, StackUpdateFailed
from model_service.model.load import load_model
from model_service.model.registry import ResolvedModel, download, resolve
from model_service.model.target import Target

LIVE_ALIAS = "live"
"""The alias a consumer's event source mapping invokes (stacks/model-consumer.yaml): what the function runs."""


def upload(model_dir: Path, destination: str, s3: Any) -> str:
    """Copy a model directory to ``destination`` (``s3://bucket/prefix``), which then holds exactly its files.

    Objects left under the prefix by an earlier upload that are not part of
    this model are deleted after the upload, so a stale file can never be
    served beside the new ones.
    """
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _upload(model_dir, destination, s3)
    except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
        raise ModelUploadFailed(f"cannot copy the model to {destination}: {exc}") from None


def _upload(model_dir: Path, destination: str, s3: Any) -> str:
    bucket, prefix = s3_location.split(destination.rstrip("/"))
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
    target: Target
    """What it predicts: which consumer of the template serves it (DurationModelUri, CostModelUri)."""
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
    return DeployableModel(model_uri, resolved.version, loaded.description, loaded.target, resolved)


Role = Literal["Model", "Challenger"]
"""Which of a target's template parameters: the consumer's model, or the challenger its shadow serves."""


def stack_parameters(target: Target, role: Role, uri: str, version: str = "") -> dict[str, str]:
    """``DurationModelUri``/``DurationModelVersion``, ``CostChallengerUri``/...: empty clears (no challenger)."""
    name = target.name.capitalize()
    return {f"{name}{role}Uri": uri, f"{name}{role}Version": version}


def consumer_resource(target: Target, role: Role) -> str:
    """The template's nested stack that serves ``role`` for ``target``: ``DurationConsumer``, ``CostShadowConsumer``."""
    return f"{target.name.capitalize()}{'Shadow' if role == 'Challenger' else ''}Consumer"


CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
"""What template.yaml needs: roles without names, the SAM transform and its nested consumer stacks."""


def redeploy(cfn: Any, stack_name: str, overrides: dict[str, str], timeout: float = 1800) -> bool:
    """Update ``stack_name`` to ``overrides``, with its template and every other parameter as they are.

    Returns False when nothing changed (CloudFormation's "No updates"). The
    stream functions run behind their ``live`` alias, so a changed model
    reaches each shard between two batches, never inside one.
    """
    from botocore.exceptions import ClientError, WaiterError

    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    existing = {p["ParameterKey"] for p in stack.get("Parameters", [])}
    unknown = sorted(set(overrides) - existing)
    if unknown:
        raise StackUpdateFailed(
            f"stack {stack_name} has no parameter {', '.join(unknown)}: deployed from another template?"
        )
    parameters = [
        {"ParameterKey": key, "ParameterValue": overrides[key]}
        if key in overrides
        else {"ParameterKey": key, "UsePreviousValue": True}
        for key in sorted(existing)
    ]
    try:
        _update(cfn, stack_name, parameters)
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            return False
        raise StackUpdateFailed(f"stack {stack_name} cannot be updated: {exc}") from None
    waiter = cfn.get_waiter("stack_update_complete")
    try:
        waiter.wait(StackName=stack_name, WaiterConfig={"Delay": 2, "MaxAttempts": max(1, int(timeout / 2))})
    except WaiterError:
        reasons = "; ".join(failure_reasons(cfn, stack_name)) or "no reason given"
        raise StackUpdateFailed(f"stack {stack_name} did not update: {reasons}") from None
    return True


def served_model(lam: Any, function: str) -> tuple[str, str]:
    """The MODEL_URI and MODEL_VERSION of the version ``function``'s live alias points to: what its stream gets."""
    version = lam.get_alias(FunctionName=function, Name=LIVE_ALIAS)["FunctionVersion"]
    configuration = lam.get_function_configuration(FunctionName=function, Qualifier=version)
    variables = configuration.get("Environment", {}).get("Variables", {})
    return variables.get("MODEL_URI", ""), variables.get("MODEL_VERSION", "")


def check_served(cfn: Any, lam: Any, stack_name: str, consumer: str, model: DeployableModel) -> str:
    """The function of the nested stack ``consumer`` (DurationConsumer, ...), once it is seen to serve ``model``.

    A stack update can complete without reaching a consumer: CloudFormation
    may not update a nested stack (LocalStack does not), and a canary may
    have rolled back. The stream is what counts, so what its live alias
    serves is what is checked.
    """
    from botocore.exceptions import ClientError

    try:
        nested = cfn.describe_stack_resource(StackName=stack_name, LogicalResourceId=consumer)
    except ClientError as exc:  # ValidationError: no such resource
        raise StackUpdateFailed(f"stack {stack_name} has no consumer {consumer}: {exc}") from None
    nested_stack = cfn.describe_stacks(StackName=nested["StackResourceDetail"]["PhysicalResourceId"])["Stacks"][0]
    function = {o["OutputKey"]: o["OutputValue"] for o in nested_stack.get("Outputs", [])}["FunctionName"]
    served = served_model(lam, function)
    if served != (model.model_uri, model.version):
        raise StackUpdateFailed(
            f"stack {stack_name} updated, but {function}'s live alias still serves {served[0]} version"
            f" {served[1] or '(derived)'}, not {model.model_uri} version {model.version}: CloudFormation did not"
            f" update its consumer stack (LocalStack cannot update nested stacks), or a canary rolled back"
        )
    return function


def _update(cfn: Any, stack_name: str, parameters: list[dict[str, Any]]) -> None:
    """UpdateStack with the stack's own template: by reference on AWS; by its text where that is refused.

    LocalStack refuses UsePreviousTemplate ("Specify exactly one of
    'TemplateBody' or 'TemplateUrl'"); the template it keeps is passed back
    instead. AWS takes the reference, which has no size limit: template.yaml
    is over the 51,200 bytes a TemplateBody may have.
    """
    from botocore.exceptions import ClientError

    update = {"StackName": stack_name, "Parameters": parameters, "Capabilities": CAPABILITIES}
    try:
        cfn.update_stack(UsePreviousTemplate=True, **update)
    except ClientError as exc:
        if "Specify exactly one of" not in str(exc):
            raise
        body = cfn.get_template(StackName=stack_name, TemplateStage="Original")["TemplateBody"]
        cfn.update_stack(TemplateBody=body if isinstance(body, str) else json.dumps(body), **update)


def failure_reasons(cfn: Any, stack_name: str) -> list[str]:
    """Why a stack failed, its nested stacks' reasons included (they hold the real ones)."""
    reasons = []
    for event in cfn.describe_stack_events(StackName=stack_name)["StackEvents"]:
        if event["ResourceStatus"].endswith("FAILED"):
            reasons.append(f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}")
            nested = event.get("PhysicalResourceId", "")
            own = nested == event.get("StackId")  # the stack's own event, not a nested stack's
            if event.get("ResourceType") == "AWS::CloudFormation::Stack" and nested.startswith("arn:") and not own:
                reasons += [f"  {reason}" for reason in failure_reasons(cfn, nested)]
    return reasons
