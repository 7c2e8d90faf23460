"""scripts/deploy_aws.py: the dry run prints, in order, every command of a deployment, and each would work.

The dry run needs no AWS, Docker or network, so it runs here in full; its
output is linted as a reader would paste it (every command parses with shlex
and names the region), its ``sam deploy`` is held to template.yaml (every
parameter the template requires, every image function mapped) and checked by
the SAM CLI's own option validation. Real mode is run on a fake
``subprocess.run`` that answers as AWS would, to check what it reads back.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_stack.aws import TEMPLATE
from local_stack.deploy import parse_template
from scripts import deploy_aws

ROOT = TEMPLATE.parent
REGION = "eu-west-1"
WRITER = "arn:aws:iam::123456789012:role/ModelWriter"
TAG = "20260101T000000Z"
EXAMPLE = (
    "--region", REGION, "--stack-name", "rides", "--alarm-email", "ops@example.com",
    "--model-writer-arn", WRITER, "--image-tag", TAG,
)  # fmt: skip
"""The README's and `make deploy-aws`'s example, without --dry-run."""
AWS_PROGRAMS = {"aws", "docker", "sam"}
HEADER = re.compile(r"^\[(?P<number>\d+)/(?P<of>\d+)\] (?P<title>.*)$")


@dataclass(frozen=True)
class Printed:
    """A command line of the output: the step it is in, its text and its words."""

    step: int
    text: str
    words: list[str]

    def segments(self) -> list[list[str]]:
        """The commands of a pipeline (``a | b``), each without its leading VAR=value assignments."""
        segments: list[list[str]] = [[]]
        for word in self.words:
            if word == "|":
                segments.append([])
            else:
                segments[-1].append(word)
        return [_without_assignments(segment) for segment in segments]

    @property
    def program(self) -> str:
        return Path(self.segments()[0][0]).name

    def option(self, name: str) -> list[str]:
        """Every value given to ``name``: the words after it up to the next option."""
        values, taking = [], False
        for word in self.segments()[0]:
            if word.startswith("--"):
                taking = word == name
            elif taking:
                values.append(word)
        return values


def _without_assignments(words: list[str]) -> list[str]:
    index = 0
    while index < len(words) and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[index]):
        index += 1
    return words[index:]


@dataclass(frozen=True)
class Output:
    text: str
    steps: list[tuple[int, str]]
    commands: list[Printed]

    def all(self, program: str, *words: str) -> list[Printed]:
        """The commands of ``program`` whose words start with ``words`` (after the program)."""
        return [c for c in self.commands if c.program == program and c.segments()[0][1 : 1 + len(words)] == list(words)]

    def one(self, program: str, *words: str) -> Printed:
        (command,) = self.all(program, *words)
        return command


def read(text: str) -> Output:
    """The step headers and the commands (``$ ...``, continued by trailing backslashes) of the output."""
    steps: list[tuple[int, str]] = []
    commands: list[Printed] = []
    lines = iter(text.splitlines())
    for line in lines:
        if header := HEADER.match(line):
            assert int(header["of"]) == deploy_aws.STEPS
            steps.append((int(header["number"]), header["title"]))
        elif line.startswith("  $ "):
            command = line[4:]
            while command.endswith("\\"):
                command = f"{command[:-1].rstrip()} {next(lines).strip()}"
            commands.append(Printed(steps[-1][0], command.strip(), shlex.split(command)))
    return Output(text, steps, commands)


def dry_run(*args: str) -> Output:
    out = io.StringIO()
    assert deploy_aws.main([*args, "--dry-run"], out=out) == 0
    return read(out.getvalue())


@pytest.fixture(scope="module")
def example() -> Output:
    return dry_run(*EXAMPLE)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return parse_template(TEMPLATE.read_text())


def image_functions(template: dict[str, Any]) -> dict[str, str]:
    """SAM's full path of every image function of the template and its nested stacks -> its Dockerfile target."""
    found = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and resource["Properties"]["PackageType"] == "Image":
            found[name] = resource["Metadata"]["DockerBuildTarget"]
        if resource["Type"] == "AWS::Serverless::Application":
            nested = parse_template((ROOT / resource["Properties"]["Location"]).read_text())
            found |= {f"{name}/{path}": target for path, target in image_functions(nested).items()}
    return found


def test_the_dry_run_prints_the_nine_steps_in_order(example):
    assert [number for number, _ in example.steps] == list(range(1, deploy_aws.STEPS + 1))
    assert example.text.rstrip().endswith("Dry run done: nothing was run.")


def test_every_aws_docker_and_sam_command_parses_and_names_the_region(example):
    checked = [c for c in example.commands if c.program in AWS_PROGRAMS]
    assert len(checked) >= 20
    for command in example.commands:
        for segment in command.segments():
            if Path(segment[0]).name in AWS_PROGRAMS:
                assert REGION in " ".join(segment), command.text
            if segment[0] == "aws":
                assert segment[segment.index("--region") + 1] == REGION, command.text


def test_each_step_runs_its_own_commands_in_order(example):
    def step_of(program: str, *words: str) -> list[int]:
        return [c.step for c in example.all(program, *words)]

    assert step_of("aws", "sts", "get-caller-identity") == [2]
    assert set(step_of("aws", "ecr", "create-repository")) == {3}
    assert step_of("aws", "ecr", "get-login-password") == [3]
    assert set(step_of("docker", "build")) == {4}
    assert set(step_of("docker", "push")) == {4}
    assert step_of("aws", "cloudformation", "deploy") == [5]
    assert step_of("python", "-m", "model_service", "resolve") == [6, 6]
    assert step_of("sam", "deploy") == [8]
    assert step_of("aws", "cloudformation", "describe-stacks")[-1] == 9
    assert [c.step for c in example.commands] == sorted(c.step for c in example.commands)
    builds, pushes = example.all("docker", "build"), example.all("docker", "push")
    assert example.commands.index(builds[-1]) < example.commands.index(pushes[0])


def test_each_image_is_a_dockerfile_target_built_for_the_functions_architecture(example, template):
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    builds = example.all("docker", "build")
    built = [b.option("--target")[0] for b in builds]
    assert sorted(built) == sorted({*image_functions(template).values(), "web"})
    assert set(built) <= targets
    for build in builds:
        assert build.option("--platform") == ["linux/amd64"]
        assert "--provenance=false" in build.words, "a provenance attestation makes an index Lambda refuses"
    pushed = [p.segments()[0][2] for p in example.all("docker", "push")]
    assert pushed == [b.option("--tag")[0] for b in builds]
    (login,) = example.all("aws", "ecr", "get-login-password")
    docker_login = login.segments()[1]
    assert docker_login[:2] == ["docker", "login"]
    assert "--password-stdin" in docker_login
    assert {tag.split("/")[0] for tag in pushed} == {docker_login[-1]}, "pushed to the registry logged in to"


def overrides(deploy: Printed) -> dict[str, str]:
    return dict(value.split("=", 1) for value in deploy.option("--parameter-overrides"))


def test_sam_deploy_gets_every_parameter_the_template_requires(example, template):
    deploy = example.one("sam", "deploy")
    given = overrides(deploy)
    declared = template["Parameters"]
    required = {name for name, spec in declared.items() if "Default" not in spec}
    assert required <= set(given) <= set(declared)
    for name, value in given.items():
        if "AllowedPattern" in declared[name] and "<" not in value:
            for item in value.split(",") if declared[name]["Type"] == "CommaDelimitedList" else [value]:
                assert re.fullmatch(declared[name]["AllowedPattern"], item), (name, item)
    assert given["ModelWriterArns"] == WRITER
    assert given["AlarmEmail"] == "ops@example.com"
    assert deploy.option("--region") == [REGION]
    assert deploy.option("--stack-name") == ["rides"]
    assert deploy.option("--template-file") == ["template.yaml"]
    assert deploy.option("--capabilities") == ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    assert "--resolve-s3" in deploy.words, "template.yaml is over CloudFormation's 51,200-byte inline limit"
    assert "--guided" not in deploy.words


def test_sam_deploy_runs_the_pushed_images_and_the_resolved_models(example, template):
    given = overrides(example.one("sam", "deploy"))
    pushed = {
        p.segments()[0][2].rsplit(":", 1)[0].rsplit("-", 1)[1]: p.segments()[0][2]
        for p in example.all("docker", "push")
    }
    assert (given["ImageUri"], given["ScoringImageUri"]) == (pushed["lambda"], pushed["scoring"])
    resolved = [c.option("--upload-to")[0] for c in example.all("python", "-m", "model_service", "resolve")]
    assert resolved == [f"s3://{given['ModelBucket']}/{given['ModelPrefix']}"] * 2
    assert (
        given["DurationModelUri"] == f"s3://<model-bucket>/ride-duration/ride-duration/{given['DurationModelVersion']}"
    )
    assert given["CostModelUri"] == f"s3://<model-bucket>/ride-duration/ride-cost/{given['CostModelVersion']}"
    assert given["ScoringInputPrefix"] == template["Parameters"]["ScoringInputPrefix"]["Default"]


def test_sam_deploy_maps_every_image_function_nested_ones_included_to_its_images_repository(example, template):
    deploy = example.one("sam", "deploy")
    mapped = dict(value.split("=", 1) for value in deploy.option("--image-repositories"))
    functions = image_functions(template)
    assert set(mapped) == set(functions)
    assert {"DurationConsumer/Function", "CostConsumer/Function"} <= set(mapped)
    for path, target in functions.items():
        assert mapped[path].endswith(f"/rides-{target}"), path


@pytest.mark.skipif(not (ROOT / ".tools/bin/sam").exists(), reason="needs the SAM CLI of .tools (make setup)")
def test_the_sam_cli_accepts_the_printed_deploy(example, tmp_path):
    """SAM's own option checks, offline: it must get past them and fail only on the unreachable endpoint."""
    deploy = example.one("sam", "deploy")
    argv = [
        re.sub(r"<([a-z]+)-bucket>", r"rides-\1", word).replace("<account>", "123456789012")
        for word in deploy.segments()[0]
    ]
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
        "SAM_CLI_TELEMETRY": "0",
    }
    said = subprocess.run(argv, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert said.returncode != 0
    assert "Could not connect to the endpoint URL" in said.stdout + said.stderr, said.stdout + said.stderr


def test_the_web_image_runs_the_resolved_models_with_the_region_and_credentials(example):
    (run,) = example.all("docker", "run")
    given = overrides(example.one("sam", "deploy"))
    environment = [word for flag, word in zip(run.words, run.words[1:], strict=False) if flag == "-e"]
    assert f"AWS_DEFAULT_REGION={REGION}" in environment
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} <= set(environment), "by name only"
    assert f"MODEL_URIS={given['DurationModelUri']},{given['CostModelUri']}" in environment
    assert f"MODEL_VERSIONS={given['DurationModelVersion']},{given['CostModelVersion']}" in environment
    assert run.words[-1] == example.one("docker", "push", run.words[-1]).words[-1]
    assert run.step == 9


def test_the_alarm_email_is_to_be_confirmed(example):
    (step_nine,) = [title for number, title in example.steps if number == 9]
    assert "Confirm the alarm e-mail" in example.text.split(f"] {step_nine}", 1)[1]
    assert example.one("aws", "sns", "list-subscriptions-by-topic").step == 9


@pytest.mark.parametrize(
    "session",
    ["arn:aws:sts::123456789012:assumed-role/ModelWriter/alice", "arn:aws-cn:sts::123456789012:assumed-role/W/s"],
)
def test_a_session_arn_is_refused_as_a_model_writer(session, capsys):
    with pytest.raises(SystemExit) as exit_:
        deploy_aws.main(["--region", REGION, "--model-writer-arn", session, "--dry-run"], out=io.StringIO())
    assert exit_.value.code == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "session ARN" in said
    assert "lock every later model upload out" in said
    assert ":iam::123456789012:role/" in said, "it says which role ARN to give instead"


@pytest.mark.parametrize(
    "arn", ["*", "arn:aws:iam::123456789012:group/deployers", "arn:aws:s3:::models", "ModelWriter", WRITER + ",x"]
)
def test_anything_but_a_role_user_or_root_arn_is_refused_as_a_model_writer(arn):
    with pytest.raises(SystemExit) as exit_:
        deploy_aws.main(["--region", REGION, "--model-writer-arn", arn, "--dry-run"], out=io.StringIO())
    assert exit_.value.code == 2


@pytest.mark.parametrize(
    ("option", "value"),
    [("--region", "Europe"), ("--stack-name", "a" * 31), ("--stack-name", "rides_1"), ("--alarm-email", "ops")],
)
def test_a_value_aws_would_refuse_is_refused_before_anything_runs(option, value):
    args = dict(zip(EXAMPLE[::2], EXAMPLE[1::2], strict=True)) | {option: value}
    with pytest.raises(SystemExit) as exit_:
        deploy_aws.main([*(word for pair in args.items() for word in pair), "--dry-run"], out=io.StringIO())
    assert exit_.value.code == 2


@pytest.mark.parametrize(
    ("model_bucket", "data_bucket"), [("", ""), ("our-models", ""), ("", "our-trips"), ("our-models", "our-trips")]
)
def test_the_bucket_stack_creates_only_the_buckets_not_given(model_bucket, data_bucket):
    args = [*EXAMPLE]
    args += ["--model-bucket", model_bucket] if model_bucket else []
    args += ["--data-bucket", data_bucket] if data_bucket else []
    output = dry_run(*args)
    given = overrides(output.one("sam", "deploy"))
    assert given["ModelBucket"] == (model_bucket or "<model-bucket>")
    assert given["DataBucket"] == (data_bucket or "<data-bucket>")
    checked = [c.option("--bucket")[0] for c in output.all("aws", "s3api", "head-bucket")]
    assert checked == [name for name in (model_bucket, data_bucket) if name]
    stacks = output.all("aws", "cloudformation", "deploy")
    if model_bucket and data_bucket:
        assert stacks == []
        return
    (stack,) = stacks
    assert stack.step == 5
    assert stack.option("--stack-name") == ["rides-buckets"]
    assert stack.option("--template-file") == ["stacks/buckets.yaml"]
    assert stack.option("--parameter-overrides") == [
        f"CreateModelBucket={'false' if model_bucket else 'true'}",
        f"CreateDataBucket={'false' if data_bucket else 'true'}",
    ]


def test_a_given_model_bucket_is_warned_of_its_policy_being_replaced():
    output = dry_run(*EXAMPLE, "--model-bucket", "our-models")
    assert output.one("aws", "s3api", "get-bucket-policy").option("--bucket") == ["our-models"]
    assert "replaces the whole bucket policy of our-models" in " ".join(output.text.split())


def test_the_trips_are_copied_only_when_given(example, tmp_path):
    assert example.all("aws", "s3", "sync") == []
    (tmp_path / "green_tripdata_2021-01.parquet").write_bytes(b"PAR1")
    (tmp_path / "notes.txt").write_text("not a month")
    (sync,) = dry_run(*EXAMPLE, "--trips", str(tmp_path)).all("aws", "s3", "sync")
    assert sync.step == 7
    assert sync.segments()[0][5:7] == [str(tmp_path), "s3://<data-bucket>/trips/"]
    assert sync.option("--include") == ["*_tripdata_*.parquet"]


def test_a_trips_folder_without_a_monthly_file_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        deploy_aws.main([*EXAMPLE, "--trips", str(tmp_path), "--dry-run"], out=io.StringIO())


def test_without_a_writer_the_caller_writes_the_models():
    output = dry_run(*[w for w in EXAMPLE if w not in ("--model-writer-arn", WRITER)])
    assert overrides(output.one("sam", "deploy"))["ModelWriterArns"] == "<caller-arn>"


@pytest.mark.parametrize(
    ("caller", "writers", "writes"),
    [
        ("arn:aws:sts::123456789012:assumed-role/ModelWriter/alice", [WRITER], True),
        (
            "arn:aws:sts::123456789012:assumed-role/ModelWriter/alice",
            ["arn:aws:iam::123456789012:role/ci/ModelWriter"],
            True,
        ),
        ("arn:aws:sts::123456789012:assumed-role/Other/alice", [WRITER], False),
        ("arn:aws:sts::210987654321:assumed-role/ModelWriter/alice", [WRITER], False),
        (
            "arn:aws:sts::123456789012:assumed-role/Deployer-7/alice",
            ["arn:aws:iam::123456789012:role/Deployer-*"],
            True,
        ),
        ("arn:aws:iam::123456789012:user/alice", ["arn:aws:iam::123456789012:user/alice"], True),
        ("arn:aws:iam::123456789012:user/alice", [WRITER], False),
    ],
)
def test_a_caller_writes_models_as_the_bucket_policy_would_judge_it(caller, writers, writes):
    assert deploy_aws.is_writer(caller, writers) is writes


# --------------------------------------------------------------------------- real mode, on a fake AWS


class FakeAws:
    """What the commands would say, by program and subcommand; records every call."""

    ACCOUNT = "123456789012"

    def __init__(self, caller: str) -> None:
        self.caller = caller
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, argv: list[str] | tuple[str, ...], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.calls.append((argv, kwargs))
        code, stdout = self.answer(argv, kwargs)
        if code and kwargs.get("check"):
            raise subprocess.CalledProcessError(code, argv, stdout, "error")
        return subprocess.CompletedProcess(argv, code, stdout, "")

    def answer(self, argv: list[str], kwargs: dict[str, Any]) -> tuple[int, str]:
        name = Path(argv[0]).name
        words = argv[1:3]
        registry = f"{self.ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
        if words == ["sts", "get-caller-identity"]:
            return 0, f"{self.ACCOUNT}\t{self.caller}\n"
        if words == ["ecr", "describe-repositories"]:
            return 254, ""  # none yet
        if words == ["ecr", "create-repository"]:
            return 0, f"{registry}/{argv[argv.index('--repository-name') + 1]}\n"
        if words == ["ecr", "get-login-password"]:
            return 0, "s3cret"
        if words == ["cloudformation", "describe-stacks"] and argv[argv.index("--stack-name") + 1].endswith("-buckets"):
            return 0, "ModelBucket\trides-buckets-modelbucket-1\nDataBucket\trides-buckets-databucket-2\n"
        if words == ["cloudformation", "describe-stacks"]:
            return 0, f"AlarmTopicArn\tarn:aws:sns:{REGION}:{self.ACCOUNT}:rides-AlarmTopic\n"
        if name == "python" and "resolve" in argv:
            model = argv[argv.index("resolve") + 1].removeprefix("models:/").split("@")[0]
            upload = argv[argv.index("--upload-to") + 1]
            return 0, f"MODEL_URI={upload}/{model}/7\nMODEL_VERSION=7\n"
        return 0, ""


def test_real_mode_runs_each_command_and_deploys_with_what_they_said(monkeypatch):
    fake = FakeAws("arn:aws:sts::123456789012:assumed-role/ModelWriter/alice")
    monkeypatch.setattr(deploy_aws.subprocess, "run", fake)
    out = io.StringIO()
    assert deploy_aws.main(list(EXAMPLE), out=out) == 0
    printed = read(out.getvalue())
    ran = [argv for argv, _ in fake.calls]
    shown_only = (["export"], ["aws", "sns"], ["docker", "run"])
    run_as_printed = [
        segment
        for command in printed.commands
        for segment in command.segments()
        if not any(segment[: len(words)] == words for words in shown_only)
    ]
    assert ran == run_as_printed, "real mode runs exactly the commands it prints, in their order"
    (deploy,) = [argv for argv in ran if Path(argv[0]).name == "sam"]
    given = dict(value.split("=", 1) for value in Printed(8, "", deploy).option("--parameter-overrides"))
    registry = f"123456789012.dkr.ecr.{REGION}.amazonaws.com"
    assert given["ImageUri"] == f"{registry}/rides-lambda:{TAG}"
    assert given["ModelBucket"] == "rides-buckets-modelbucket-1"
    assert given["DataBucket"] == "rides-buckets-databucket-2"
    assert given["DurationModelUri"] == "s3://rides-buckets-modelbucket-1/ride-duration/ride-duration/7"
    assert given["CostModelVersion"] == "7"
    (login_call,) = [kwargs for argv, kwargs in fake.calls if argv[:2] == ["docker", "login"]]
    assert login_call["input"] == "s3cret"
    assert "s3cret" not in out.getvalue(), "the registry password is never printed"
    assert all(kwargs["env"]["AWS_DEFAULT_REGION"] == REGION for _, kwargs in fake.calls)
    assert not [argv for argv in ran if argv[:2] == ["docker", "run"]], "the web image is shown, not run"
    assert "PendingConfirmation" in out.getvalue()


def test_real_mode_refuses_a_caller_who_could_not_upload_models_again(monkeypatch, capsys):
    fake = FakeAws("arn:aws:sts::123456789012:assumed-role/SomeoneElse/bob")
    monkeypatch.setattr(deploy_aws.subprocess, "run", fake)
    assert deploy_aws.main(list(EXAMPLE), out=io.StringIO()) == 2
    assert "is not among --model-writer-arn" in capsys.readouterr().err
    assert len(fake.calls) == 1, "nothing after the identity check ran"


def test_real_mode_refuses_a_session_caller_without_a_writer(monkeypatch, capsys):
    fake = FakeAws("arn:aws:sts::123456789012:assumed-role/Deployer/alice")
    monkeypatch.setattr(deploy_aws.subprocess, "run", fake)
    args = [w for w in EXAMPLE if w not in ("--model-writer-arn", WRITER)]
    assert deploy_aws.main(args, out=io.StringIO()) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "session of the role Deployer" in said
    assert "aws iam get-role --role-name Deployer" in said


def test_real_mode_stops_at_the_first_failing_command(monkeypatch, capsys):
    fake = FakeAws(WRITER.replace(":role/", ":user/"))

    def failing_build(argv: list[str] | tuple[str, ...], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if list(argv[:2]) == ["docker", "build"]:
            raise subprocess.CalledProcessError(1, list(argv))
        return fake(argv, **kwargs)

    monkeypatch.setattr(deploy_aws.subprocess, "run", failing_build)
    args = [w for w in EXAMPLE if w not in ("--model-writer-arn", WRITER)]
    assert deploy_aws.main(args, out=io.StringIO()) == 1
    assert "docker build" in capsys.readouterr().err
    assert not [argv for argv, _ in fake.calls if argv[:2] == ["docker", "push"]]
