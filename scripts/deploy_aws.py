"""Deploy the project to AWS from an empty account: one path, in numbered steps, each printing its commands.

    make deploy-aws ARGS="--region eu-west-1 --stack-name rides --alarm-email ops@example.com \\
        --model-writer-arn arn:aws:iam::123456789012:role/ModelWriter [--trips data/] [--dry-run]"

or ``.venv/bin/python -m scripts.deploy_aws ...`` from the project root. The steps:

1. the region every command names;
2. who is deploying (``aws sts get-caller-identity``), checked against the model writers;
3. one ECR repository per image (created if absent), and ``docker login`` to the registry;
4. the images built for x86_64 from the Dockerfile's targets, and pushed;
5. the model and data buckets, in their own stack (stacks/buckets.yaml), unless given;
6. the registry's champion of each model resolved, checked and copied to the model bucket
   with the project's own ``python -m model_service resolve``;
7. the monthly trip files (``--trips``) copied to ``s3://<data bucket>/trips/``;
8. ``sam deploy`` of template.yaml, non-guided, with every parameter the steps produced;
9. the stack's outputs, the alarm e-mail to confirm, and how to run the web image.

``--dry-run`` prints every command in order and runs none: it needs no AWS
credentials, Docker or network. A value an earlier step would read from AWS
(the account, a bucket's name, a model's version) is shown as a placeholder
such as ``<account>``. Without it, each command is printed as it runs, and
the first that fails stops the deployment with its exit status; running it
again is safe, as every step is idempotent.

The image functions, their Dockerfile targets and the image parameters are
read from template.yaml and its nested stacks, so a consumer added to the
template (README, "A third model") is deployed without a change here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TextIO

from local_stack.deploy import parse_template
from model_service.model.aliases import CHAMPION
from model_service.model.deploy import CAPABILITIES, stack_parameters
from model_service.model.training import RECIPES

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "template.yaml"
BUCKETS_TEMPLATE = "stacks/buckets.yaml"
PYTHON = ".venv/bin/python"
SAM = ".tools/bin/sam"
"""The SAM CLI `make setup` pins (tools/requirements.txt), the one tools/lint-infra.sh lints with."""
TRIP_FILES = "*_tripdata_*.parquet"
WEB_TARGET = "web"
"""The web service's Dockerfile target: no function of the stack runs it, it is built for step 9."""
PLATFORM = "linux/amd64"
"""The functions' Architectures (x86_64), built from any machine, an Apple-silicon laptop included."""
STEPS = 9

SESSION_ARN = re.compile(r"arn:(?P<partition>aws[a-z-]*):sts::(?P<account>[0-9]{12}):assumed-role/(?P<role>[^/]+)/.+")
IAM_ARN = re.compile(r"arn:aws[a-z-]*:iam::(?P<account>[^:]+):(?P<kind>root|role|user)(?:/(?P<path>.*))?")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
STACK_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]{0,29}")
"""template.yaml's stack name prefixes every function name: stacks/model-consumer.yaml's FunctionNamePrefix."""
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class Refused(Exception):
    """A deployment that would not work, or not be safe, refused before it starts (exit status 2)."""


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    """One command line, as printed and as run: its environment, its words, and what its output is piped into."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    into: Command | None = None

    @classmethod
    def of(cls, *argv: str, env: dict[str, str] | None = None) -> Command:
        return cls(tuple(argv), tuple((env or {}).items()))

    def pipe(self, into: Command) -> Command:
        """``self | into``."""
        return replace(self, into=into)

    def render(self, width: int = 100) -> str:
        """Shell text, quoted with shlex; a long command wrapped between options, continued with backslashes."""
        words = [f"{name}={shlex.quote(value)}" for name, value in self.env] + [shlex.quote(w) for w in self.argv]
        if self.into is not None:
            return f"{' '.join(words)} | {self.into.render(width)}"
        lines: list[str] = []
        exploded = False  # the last line is a value of an option with many: the next option starts a line
        for group in _option_groups(words):
            text = " ".join(group)
            if lines and not exploded and len(lines[-1]) + 1 + len(text) <= width:
                lines[-1] += f" {text}"
            elif len(text) <= width or len(group) <= 3:
                lines.append(text)
                exploded = False
            else:  # an option with many values (--parameter-overrides): one value a line
                lines += [group[0], *(f"    {word}" for word in group[1:])]
                exploded = True
        return " \\\n    ".join(lines)


def _option_groups(words: list[str]) -> list[list[str]]:
    """The words before the first option, then each option with the values that follow it."""
    groups: list[list[str]] = [[]]
    for word in words:
        if word.startswith("-") and word != "-" and groups[-1]:
            groups.append([])
        groups[-1].append(word)
    return groups


@dataclass
class Runner:
    """Prints every command; runs it too unless this is a dry run. Steps use it and nothing else to act.

    A dry run returns each command's placeholder instead of its output, so the
    steps after it print what they would run with it.
    """

    dry_run: bool
    out: TextIO = sys.stdout
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)

    def header(self, number: int, title: str) -> None:
        print(f"\n[{number}/{STEPS}] {title}", file=self.out, flush=True)

    def note(self, text: str) -> None:
        wrapped = textwrap.fill(
            text, width=100, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False, break_long_words=False
        )
        print(wrapped, file=self.out, flush=True)

    def show(self, command: Command) -> None:
        """Print a command for the reader to run (never run here)."""
        text = command.render().replace("\n", "\n  ")
        print(f"  $ {text}", file=self.out, flush=True)

    def export(self, name: str, value: str) -> None:
        """Set a variable for every later command, as `export` does in a shell."""
        self.show(Command.of("export", f"{name}={value}"))
        self.env[name] = value

    def run(self, command: Command, *, placeholder: str = "", capture: bool = False) -> str:
        """Print and run ``command``; its stdout (stripped) if captured, else ''. Fails on a non-zero exit."""
        self.show(command)
        if self.dry_run:
            return placeholder
        completed = self._run(command, capture=capture, check=True)
        return completed.stdout.strip() if capture else ""

    def attempt(self, command: Command) -> str | None:
        """Print and run ``command``, for what it says or that it failed: its stdout, or None if it failed.

        A dry run says None: the command that would follow a failure is printed too.
        """
        self.show(command)
        if self.dry_run:
            return None
        completed = self._run(command, capture=True, check=False)
        return completed.stdout.strip() if completed.returncode == 0 else None

    def _run(self, command: Command, *, capture: bool, check: bool) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, **self.env, **dict(command.env)}
        if command.into is not None:  # `a | b`: a's output (a password) is handed over, never printed
            first = subprocess.run(command.argv, cwd=self.cwd, env=environment, capture_output=True, text=True)
            if first.returncode != 0:
                raise subprocess.CalledProcessError(first.returncode, command.argv, first.stdout, first.stderr)
            second = command.into
            return subprocess.run(
                second.argv, cwd=self.cwd, env=environment, input=first.stdout, text=True, check=check
            )
        return subprocess.run(
            command.argv,
            cwd=self.cwd,
            env=environment,
            text=True,
            check=check,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture and not check else None,
        )


# --------------------------------------------------------------------------- what template.yaml needs


@dataclass(frozen=True)
class ImageFunction:
    path: str
    """SAM's full path of the function: DecisionFunction, or DurationConsumer/Function in a nested stack."""
    target: str
    """The Dockerfile target its image is built from (its Metadata's DockerBuildTarget)."""


@dataclass(frozen=True)
class Stack:
    """What deploying template.yaml takes, read from it and its nested stacks."""

    functions: tuple[ImageFunction, ...]
    image_parameters: dict[str, str]
    """Parameter -> the Dockerfile target of the image it names: ImageUri -> lambda, ScoringImageUri -> scoring."""
    writer_pattern: str
    """ModelWriterArns' AllowedPattern, which every model writer ARN must match."""
    bucket_pattern: str
    model_prefix: str
    """ModelPrefix's default: the models live under s3://<model bucket>/<prefix>/<name>/<version>."""
    trips_prefix: str
    """ScoringInputPrefix's default: the scoring function reads <prefix>/<taxi>_tripdata_<yyyy>-<mm>.parquet."""
    model_bucket_sids: frozenset[str]
    """The statements of ModelBucketPolicy, the policy the stack gives the model bucket in place of its own."""

    @classmethod
    def read(cls, root: Path = ROOT) -> Stack:
        template = parse_template((root / TEMPLATE).read_text())
        functions, image_parameters = [], {}
        for name, resource in template["Resources"].items():
            if _is_image_function(resource):
                target = resource["Metadata"]["DockerBuildTarget"]
                functions.append(ImageFunction(name, target))
                image_parameters[resource["Properties"]["ImageUri"]["Ref"]] = target
            elif resource["Type"] == "AWS::Serverless::Application":
                nested = parse_template((root / resource["Properties"]["Location"]).read_text())
                functions += [
                    ImageFunction(f"{name}/{inner}", r["Metadata"]["DockerBuildTarget"])
                    for inner, r in nested["Resources"].items()
                    if _is_image_function(r)
                ]
        parameters = template["Parameters"]
        return cls(
            tuple(functions),
            image_parameters,
            parameters["ModelWriterArns"]["AllowedPattern"],
            parameters["ModelBucket"]["AllowedPattern"],
            parameters["ModelPrefix"]["Default"],
            parameters["ScoringInputPrefix"]["Default"],
            frozenset(
                statement["Sid"]
                for statement in template["Resources"]["ModelBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            ),
        )

    @property
    def targets(self) -> list[str]:
        """Every image to build: the functions' targets, in the template's order, then the web service's."""
        return list(dict.fromkeys([*(f.target for f in self.functions), WEB_TARGET]))


def _is_image_function(resource: dict[str, Any]) -> bool:
    return resource["Type"] == "AWS::Serverless::Function" and resource["Properties"].get("PackageType") == "Image"


# --------------------------------------------------------------------------- the deployment


@dataclass
class Deployment:
    """The options, then what each step learns for the ones after it (placeholders in a dry run)."""

    region: str
    stack_name: str
    alarm_email: str
    writers: list[str]
    model_bucket: str
    data_bucket: str
    trips: Path | None
    tracking_uri: str | None
    image_tag: str
    stack: Stack
    dry_run: bool
    account: str = "<account>"
    repositories: dict[str, str] = field(default_factory=dict)
    """Dockerfile target -> its ECR repository URI."""
    models: dict[str, str] = field(default_factory=dict)
    """The models' stack parameters: DurationModelUri, DurationModelVersion, CostModelUri, ..."""

    def image(self, target: str) -> str:
        return f"{self.repositories[target]}:{self.image_tag}"

    def repository_name(self, target: str) -> str:
        return f"{self.stack_name.lower()}-{target}"

    def aws(self, service: str, operation: str, *argv: str) -> Command:
        """An AWS CLI command in the deployment's region, named on the command line, never left to a profile."""
        return Command.of("aws", service, operation, "--region", self.region, *argv)

    def parameters(self) -> dict[str, str]:
        """Every parameter sam deploy is given: the images, the buckets, the writers, the models, the e-mail."""
        parameters = {name: self.image(target) for name, target in self.stack.image_parameters.items()}
        parameters |= {
            "ModelBucket": self.model_bucket,
            "ModelPrefix": self.stack.model_prefix,
            "ModelWriterArns": ",".join(self.writers),
            **self.models,
            "DataBucket": self.data_bucket,
            "ScoringInputPrefix": self.stack.trips_prefix,
        }
        if self.alarm_email:  # sam deploy refuses an empty value; the template's default is no subscription
            parameters["AlarmEmail"] = self.alarm_email
        return parameters


def region(run: Runner, deployment: Deployment) -> None:
    """Everything goes to one region, named on every command, so none falls back to a profile's default."""
    run.header(1, f"Region: {deployment.region}")
    run.note(
        "The repositories, the buckets and both stacks are created in this region, and every AWS command below"
        " names it (--region). AWS_DEFAULT_REGION is for what reads it instead: boto3 in `resolve` and in the"
        " web image (boto3 does not read AWS_REGION)."
    )
    run.export("AWS_DEFAULT_REGION", deployment.region)


def caller(run: Runner, deployment: Deployment) -> None:
    """Who deploys must be a model writer: the models are uploaded now, and again by every later deployment.

    The stack's bucket policy lets only ModelWriterArns write below the model
    prefix, compared with aws:PrincipalArn, which for a role session is the
    role's ARN: so a writer is named by its role ARN, and a caller signed in as
    a role session must say which role that is.
    """
    run.header(2, "Caller identity")
    said = run.run(
        deployment.aws("sts", "get-caller-identity", "--query", "[Account,Arn]", "--output", "text"),
        placeholder="<account>\t<caller-arn>",
        capture=True,
    )
    account, arn = said.split("\t")
    deployment.account = account
    session = SESSION_ARN.fullmatch(arn)
    if not deployment.writers:
        if session:
            raise Refused(
                f"you are signed in as a session of the role {session['role']} ({arn}) and gave no"
                " --model-writer-arn. Give the role's ARN (aws iam get-role --role-name"
                f" {session['role']} --query Role.Arn): the bucket policy compares the caller's role ARN, so a"
                " session ARN would lock every later model upload out."
            )
        if arn.startswith("arn:") and not IAM_ARN.fullmatch(arn):
            raise Refused(
                f"cannot make {arn} a model writer: sign in as an IAM role or user, or give --model-writer-arn"
            )
        deployment.writers = [arn]
        run.note(f"No --model-writer-arn: the caller ({arn}) is the one model writer.")
    elif run.dry_run:
        run.note(f"The caller must be one of the model writers: {', '.join(deployment.writers)}.")
    elif not is_writer(arn, deployment.writers):
        raise Refused(
            f"the caller {arn} is not among --model-writer-arn ({', '.join(deployment.writers)}): it uploads the"
            " models in step 6, which the bucket policy would deny it from the second deployment on."
            " Deploy as a model writer, or add the caller's role or user ARN."
        )
    else:
        run.note(f"{arn} is a model writer ({', '.join(deployment.writers)}).")


def is_writer(caller_arn: str, writers: Sequence[str]) -> bool:
    """Whether the bucket policy's ArnLike on aws:PrincipalArn would let ``caller_arn`` write models.

    A role session's principal is its role, whose path the session ARN leaves
    out: the role is matched by account and name.
    """
    session = SESSION_ARN.fullmatch(caller_arn)
    if session is None:
        return any(fnmatchcase(caller_arn, writer) for writer in writers)
    for writer in writers:
        role = IAM_ARN.fullmatch(writer)
        if (
            role
            and role["kind"] == "role"
            and fnmatchcase(session["account"], role["account"])
            and fnmatchcase(session["role"], (role["path"] or "").rsplit("/", 1)[-1])
        ):
            return True
    return False


def repositories(run: Runner, deployment: Deployment) -> None:
    """One private repository per image, scanned on push, tags immutable: a pushed tag always names that build."""
    run.header(3, "ECR repositories and docker login")
    for target in deployment.stack.targets:
        name = deployment.repository_name(target)
        uri = run.attempt(
            deployment.aws(
                "ecr", "describe-repositories", "--repository-names", name,
                "--query", "repositories[0].repositoryUri", "--output", "text",
            )
        )  # fmt: skip
        if uri is None:
            run.note(f"if {name} is absent:")
            uri = run.run(
                deployment.aws(
                    "ecr", "create-repository", "--repository-name", name,
                    "--image-tag-mutability", "IMMUTABLE",
                    "--image-scanning-configuration", "scanOnPush=true",
                    "--encryption-configuration", "encryptionType=AES256",
                    "--query", "repository.repositoryUri", "--output", "text",
                ),
                placeholder=f"{deployment.account}.dkr.ecr.{deployment.region}.amazonaws.com/{name}",
                capture=True,
            )  # fmt: skip
        deployment.repositories[target] = uri
    registry = next(iter(deployment.repositories.values())).split("/", 1)[0]
    login = Command.of("docker", "login", "--username", "AWS", "--password-stdin", registry)
    run.run(deployment.aws("ecr", "get-login-password").pipe(login))


def images(run: Runner, deployment: Deployment) -> None:
    """Each Dockerfile target the stack runs (and the web service's), for x86_64, as Lambda accepts it.

    --provenance=false: BuildKit's provenance attestation would make the pushed
    image a multi-platform index, which Lambda refuses ("The image manifest,
    config or layer media type ... is not supported").
    """
    run.header(4, f"Build and push the images (tag {deployment.image_tag})")
    for target in deployment.stack.targets:
        run.run(
            Command.of(
                "docker", "build", "--platform", PLATFORM, "--provenance=false",
                "--target", target, "--tag", deployment.image(target), ".",
            )
        )  # fmt: skip
    for target in deployment.stack.targets:
        run.run(Command.of("docker", "push", deployment.image(target)))


def buckets(run: Runner, deployment: Deployment) -> None:
    """The buckets not given, in a stack of their own: deleting the service stack never deletes a model or a trip."""
    run.header(5, "Model and data buckets")
    given = {"model": deployment.model_bucket, "data": deployment.data_bucket}
    for name in given.values():
        if name:
            run.run(deployment.aws("s3api", "head-bucket", "--bucket", name))
    if deployment.model_bucket:
        model_bucket_policy(run, deployment)
    missing = [kind for kind, name in given.items() if not name]
    if not missing:
        run.note("Both buckets given: no bucket stack.")
        return
    stack = f"{deployment.stack_name}-buckets"
    run.note(
        f"Created by the stack {stack} ({BUCKETS_TEMPLATE}): versioned, encrypted, closed to the public, kept even"
        " when that stack is deleted."
    )
    run.run(
        deployment.aws(
            "cloudformation", "deploy", "--stack-name", stack, "--template-file", BUCKETS_TEMPLATE,
            "--parameter-overrides",
            f"CreateModelBucket={str(not deployment.model_bucket).lower()}",
            f"CreateDataBucket={str(not deployment.data_bucket).lower()}",
            "--no-fail-on-empty-changeset",
        )
    )  # fmt: skip
    said = run.run(
        deployment.aws(
            "cloudformation", "describe-stacks", "--stack-name", stack,
            "--query", "Stacks[0].Outputs[].[OutputKey,OutputValue]", "--output", "text",
        ),
        placeholder="ModelBucket\t<model-bucket>\nDataBucket\t<data-bucket>",
        capture=True,
    )  # fmt: skip
    outputs = dict(line.split("\t") for line in said.splitlines())
    deployment.model_bucket = deployment.model_bucket or outputs["ModelBucket"]
    deployment.data_bucket = deployment.data_bucket or outputs["DataBucket"]


def model_bucket_policy(run: Runner, deployment: Deployment) -> None:
    """A given model bucket's policy is replaced whole by the stack's: say what would be lost."""
    run.note(
        f"The stack replaces the whole bucket policy of {deployment.model_bucket} with its own: use a bucket"
        " dedicated to models. Its policy now:"
    )
    policy = run.attempt(
        deployment.aws(
            "s3api", "get-bucket-policy", "--bucket", deployment.model_bucket, "--query", "Policy", "--output", "text"
        )
    )  # fmt: skip
    if not policy:  # NoSuchBucketPolicy, or a dry run
        return
    statements = json.loads(policy).get("Statement", [])
    lost = [s.get("Sid", "(no Sid)") for s in statements if s.get("Sid") not in deployment.stack.model_bucket_sids]
    if lost:
        run.note(f"WARNING: these statements of its policy will be gone after step 8: {', '.join(lost)}.")


def models(run: Runner, deployment: Deployment) -> None:
    """The registry's champion of each model, pinned to its version, checked as the functions load it, copied to S3.

    The functions never talk to MLflow: resolve loads the model as they will
    (refusing what they would refuse) and copies it under the model prefix,
    one prefix per version, so the MODEL_URI deployed names exactly that copy.
    """
    run.header(6, f"Models: the @{CHAMPION} of each, resolved and copied to the model bucket")
    upload_to = f"s3://{deployment.model_bucket}/{deployment.stack.model_prefix}"
    for recipe in RECIPES.values():
        name = recipe.registered_name
        argv = [PYTHON, "-m", "model_service", "resolve", f"models:/{name}@{CHAMPION}"]
        argv += ["--upload-to", upload_to]
        if deployment.tracking_uri:
            argv += ["--tracking-uri", deployment.tracking_uri]
        version = f"<{recipe.target.name}-version>"
        said = run.run(
            Command.of(*argv, env={"AWS_DEFAULT_REGION": deployment.region}),
            placeholder=f"MODEL_URI={upload_to}/{name}/{version}\nMODEL_VERSION={version}",
            capture=True,
        )
        printed = dict(line.split("=", 1) for line in said.splitlines() if "=" in line)
        deployment.models |= stack_parameters(recipe.target, "Model", printed["MODEL_URI"], printed["MODEL_VERSION"])
        run.note(f"-> MODEL_URI={printed['MODEL_URI']}")
        run.note(f"   MODEL_VERSION={printed['MODEL_VERSION']}")


def trips(run: Runner, deployment: Deployment) -> None:
    """The TLC monthly files, named as the TLC names them, where the scoring function reads them."""
    run.header(7, f"Trips to s3://{deployment.data_bucket}/{deployment.stack.trips_prefix}/")
    if deployment.trips is None:
        run.note("No --trips: nothing to copy (the monthly scoring then finds no month until one is there).")
        return
    found = sorted(p.name for p in deployment.trips.glob(TRIP_FILES))
    run.note(f"{len(found)} monthly file(s) in {deployment.trips}: {', '.join(found)}")
    run.run(
        deployment.aws(
            "s3", "sync", str(deployment.trips), f"s3://{deployment.data_bucket}/{deployment.stack.trips_prefix}/",
            "--exclude", "*", "--include", TRIP_FILES,
        )
    )  # fmt: skip


def stack(run: Runner, deployment: Deployment) -> None:
    """sam deploy, non-guided, with every parameter the steps produced; the images are the ones step 4 pushed.

    --image-repositories maps every image function, those of the nested
    consumer stacks included (DurationConsumer/Function), to the repository
    of its image: SAM refuses a non-guided deploy of image functions without
    it (or --image-repository / --resolve-image-repos), and refuses a map that
    leaves a function out. The images are already pushed and named by the
    ImageUri parameters, so SAM pushes nothing; --resolve-image-repos would
    create a repository per function that nothing uses. --resolve-s3: the
    template is over the 51,200 bytes CloudFormation takes inline, so SAM puts
    it (and the nested consumer template) in its own bucket.
    """
    run.header(8, f"Deploy the stack {deployment.stack_name}")
    run.note(
        "ModelWriterArns are role, user or root ARNs, never session ARNs (arn:aws:sts::...:assumed-role/...): the"
        " bucket policy compares aws:PrincipalArn, a role session's role ARN, so a session ARN would lock every"
        f" later model upload out. The stack replaces the whole bucket policy of {deployment.model_bucket}."
    )
    repositories = [
        f"{function.path}={deployment.repositories[function.target]}" for function in deployment.stack.functions
    ]
    parameters = [f"{name}={value}" for name, value in deployment.parameters().items()]
    run.run(
        Command.of(
            SAM, "deploy", "--region", deployment.region, "--stack-name", deployment.stack_name,
            "--template-file", TEMPLATE, "--capabilities", *CAPABILITIES, "--resolve-s3",
            *(word for repository in repositories for word in ("--image-repositories", repository)),
            "--parameter-overrides", *parameters,
            "--no-confirm-changeset", "--no-fail-on-empty-changeset",
        ),
    )  # fmt: skip


def outputs(run: Runner, deployment: Deployment) -> None:
    """What was deployed, the alarm e-mail to confirm, and the web image on the same models."""
    run.header(9, "Outputs")
    said = run.run(
        deployment.aws(
            "cloudformation", "describe-stacks", "--stack-name", deployment.stack_name,
            "--query", "Stacks[0].Outputs[].[OutputKey,OutputValue]", "--output", "text",
        ),
        placeholder="AlarmTopicArn\t<AlarmTopicArn>",
        capture=True,
    )  # fmt: skip
    found = dict(line.split("\t", 1) for line in said.splitlines() if "\t" in line)
    if not run.dry_run:
        for key, value in sorted(found.items()):
            run.note(f"{key} = {value}")
    topic = found.get("AlarmTopicArn", "<AlarmTopicArn>")
    if deployment.alarm_email:
        run.note(
            f"Confirm the alarm e-mail: AWS sent {deployment.alarm_email} a message whose link must be followed"
            " before any alarm reaches it. Until then the subscription says PendingConfirmation:"
        )
        run.show(
            deployment.aws(
                "sns", "list-subscriptions-by-topic", "--topic-arn", topic,
                "--query", "Subscriptions[].[Endpoint,SubscriptionArn]", "--output", "text",
            )
        )  # fmt: skip
    else:
        run.note("No --alarm-email: no one hears the alarms until someone subscribes to the alarm topic:")
        run.show(
            deployment.aws(
                "sns", "subscribe", "--topic-arn", topic, "--protocol", "email",
                "--notification-endpoint", "you@example.com",
            )
        )  # fmt: skip
    web(run, deployment)


def web(run: Runner, deployment: Deployment) -> None:
    """The web image serving the models just deployed, with the region and the caller's credentials.

    The credentials are passed by name (-e NAME), from the shell, never
    written on the command line; with SSO or a named profile, export them
    first with `aws configure export-credentials`.
    """
    names = [tuple(stack_parameters(r.target, "Model", "")) for r in RECIPES.values()]  # (uri, version) each
    uris = [deployment.models[uri] for uri, _ in names]
    versions = [deployment.models[version] for _, version in names]
    run.note(
        "The web service on the same models, anywhere a container runs (the template does not deploy it). With"
        ' SSO or a named profile, first: eval "$(aws configure export-credentials --format env)".'
    )
    run.show(
        Command.of(
            "docker", "run", "--rm", "-p", "9696:9696",
            "-e", f"AWS_DEFAULT_REGION={deployment.region}",
            "-e", "AWS_ACCESS_KEY_ID", "-e", "AWS_SECRET_ACCESS_KEY", "-e", "AWS_SESSION_TOKEN",
            "-e", f"MODEL_URIS={','.join(uris)}", "-e", f"MODEL_VERSIONS={','.join(versions)}",
            deployment.image(WEB_TARGET),
        )
    )  # fmt: skip


STEP_FUNCTIONS = (region, caller, repositories, images, buckets, models, trips, stack, outputs)


# --------------------------------------------------------------------------- the command line


def parse(argv: Sequence[str] | None, stack: Stack) -> Deployment:
    """The options, each checked before anything runs: a refused value costs nothing."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy_aws",
        description=(
            "Deploy the project to AWS: ECR repositories and images, the model and data buckets, the registry's"
            " champion models, the trips, and template.yaml with sam deploy. --dry-run prints the commands only."
        ),
    )
    parser.add_argument("--region", required=True, help="the AWS region of everything deployed, e.g. eu-west-1")
    parser.add_argument("--stack-name", default="ride-duration", help="the service stack (default: %(default)s)")
    parser.add_argument(
        "--alarm-email", default="", help="subscribed to the alarm topic (confirm the e-mail AWS sends)"
    )
    parser.add_argument(
        "--model-writer-arn",
        action="append",
        default=[],
        dest="writers",
        metavar="ARN",
        help=(
            "who may write models (ModelWriterArns): an IAM role, user or root ARN, never a session ARN; repeat for"
            " several. Default: the caller, if it is an IAM user or root"
        ),
    )
    parser.add_argument("--model-bucket", default="", help="an existing bucket dedicated to models (default: create)")
    parser.add_argument(
        "--data-bucket", default="", help="an existing bucket for trips and predictions (default: create)"
    )
    parser.add_argument("--trips", type=Path, help="a folder of TLC monthly files (green_tripdata_2021-01.parquet)")
    parser.add_argument("--tracking-uri", help="the MLflow tracking URI resolve reads the registry from")
    parser.add_argument("--image-tag", help="the images' tag (default: the UTC time, so each deployment's differs)")
    parser.add_argument("--dry-run", action="store_true", help="print every command in order; run none")
    args = parser.parse_args(argv)
    try:
        check(args, stack)
    except Refused as refused:
        parser.error(str(refused))
    return Deployment(
        region=args.region,
        stack_name=args.stack_name,
        alarm_email=args.alarm_email,
        writers=list(args.writers),
        model_bucket=args.model_bucket,
        data_bucket=args.data_bucket,
        trips=args.trips,
        tracking_uri=args.tracking_uri,
        image_tag=args.image_tag or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        stack=stack,
        dry_run=args.dry_run,
    )


def check(args: argparse.Namespace, stack: Stack) -> None:
    if not REGION.fullmatch(args.region):
        raise Refused(f"--region {args.region!r} is not an AWS region name (eu-west-1, us-east-1, ...)")
    if not STACK_NAME.fullmatch(args.stack_name):
        raise Refused(
            f"--stack-name {args.stack_name!r}: a letter, then letters, digits and '-', 30 characters at most"
            " (it prefixes every function's name)"
        )
    if args.alarm_email and not EMAIL.fullmatch(args.alarm_email):
        raise Refused(f"--alarm-email {args.alarm_email!r} is not an e-mail address")
    for arn in args.writers:
        writer_refusal = check_writer(arn, stack.writer_pattern)
        if writer_refusal:
            raise Refused(writer_refusal)
    for option, name in (("--model-bucket", args.model_bucket), ("--data-bucket", args.data_bucket)):
        if name and not re.fullmatch(stack.bucket_pattern, name):
            raise Refused(f"{option} {name!r} is not an S3 bucket name")
    if args.trips is not None and not any(args.trips.glob(TRIP_FILES)):
        raise Refused(f"--trips {args.trips}: no TLC monthly file ({TRIP_FILES}) in it")
    if args.image_tag and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", args.image_tag):
        raise Refused(f"--image-tag {args.image_tag!r} is not a Docker tag")


def check_writer(arn: str, pattern: str) -> str | None:
    """Why ``arn`` cannot be a model writer (template.yaml's ModelWriterArns AllowedPattern), or None."""
    session = SESSION_ARN.fullmatch(arn)
    if session:
        role = f"arn:{session['partition']}:iam::{session['account']}:role/{session['role']}"
        return (
            f"--model-writer-arn {arn} is a session ARN (sts assumed-role): the bucket policy compares"
            " aws:PrincipalArn, which for a role session is the role's ARN, so a session ARN matches nobody and"
            f" would lock every later model upload out. Give the role's ARN, {role} (with its path, if it has"
            f" one: aws iam get-role --role-name {session['role']} --query Role.Arn)."
        )
    if arn == "*" or not re.fullmatch(pattern, arn):
        return (
            f"--model-writer-arn {arn!r} is not an IAM role, user or root ARN"
            " (arn:aws:iam::123456789012:role/ModelWriter); '*' would let anyone write a model the functions run"
        )
    return None


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    deployment = parse(argv, Stack.read())
    run = Runner(dry_run=deployment.dry_run, out=out)
    mode = "dry run: nothing runs; <placeholders> stand for what AWS would say" if run.dry_run else "running"
    print(f"Deploying {deployment.stack_name} to {deployment.region} ({mode})", file=out)
    try:
        for step in STEP_FUNCTIONS:
            step(run, deployment)
    except Refused as refused:
        print(f"deploy_aws: refused: {refused}", file=sys.stderr)
        return 2
    except FileNotFoundError as missing:  # a program not installed
        print(
            f"deploy_aws: {missing.filename} not found: it needs the AWS CLI v2, Docker and `make setup`",
            file=sys.stderr,
        )
        return 1
    except subprocess.CalledProcessError as failed:
        print(f"deploy_aws: {shlex.join(map(str, failed.cmd))} exited {failed.returncode}", file=sys.stderr)
        if failed.stderr:
            print(failed.stderr, file=sys.stderr)
        return 1
    print(f"\n{'Dry run done: nothing was run.' if run.dry_run else 'Deployed.'}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
