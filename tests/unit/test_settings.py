"""Settings: every variable checked once at start-up, a bad one named in one line with what it may be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_service.config import Settings, given
from model_service.errors import InvalidSetting

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("PUBLISH_MARGIN_SECONDS", "inf", "a number from 0 to 60"),
        ("PUBLISH_MARGIN_SECONDS", "nan", "a number from 0 to 60"),
        ("PUBLISH_MARGIN_SECONDS", "-1", "a number from 0 to 60"),
        ("PUBLISH_MARGIN_SECONDS", "abc", "a number from 0 to 60"),
        ("KINESIS_READ_TIMEOUT_SECONDS", "0", "a number above 0 to 120"),
        ("KINESIS_CONNECT_TIMEOUT_SECONDS", "-inf", "a number above 0 to 60"),
        ("WEB_MAX_RIDES", "-1", "a whole number from 1 to 1,000,000"),
        ("WEB_MAX_RIDES", "2.5", "a whole number from 1 to 1,000,000"),
        ("WEB_MAX_BODY_BYTES", "0", "a whole number from 1 to 104,857,600"),
        ("WEB_BODY_TIMEOUT", "0", "a number above 0 to 3,600"),
        ("WEB_CONCURRENCY", "0", "a whole number from 1 to 256"),
        ("WEB_WORKER_CONNECTIONS", "1e9", "a whole number from 1 to 100,000"),
        ("LONG_RIDE_THRESHOLD_MINUTES", "nan", "a number from 0 to 1,440"),
        ("COSTLY_RIDE_THRESHOLD_USD", "-5", "a number from 0 to 10,000"),
        ("BATCH_CHUNK_ROWS", "0", "a whole number from 1 to 10,000,000"),
        ("FUNCTION_TIMEOUT_SECONDS", "901", "a number from 1 to 900"),
    ],
)
def test_a_value_out_of_its_range_is_refused_naming_the_variable_the_value_and_the_range(variable, value, allowed):
    with pytest.raises(InvalidSetting) as raised:
        Settings.from_env({variable: value})
    assert str(raised.value) == f"{variable}={value!r} is not allowed: give {allowed}"


@pytest.mark.parametrize(("variable", "value"), [("MODEL_ALLOW_PICKLE", "maybe"), ("TEST_RUN", "2")])
def test_a_flag_is_true_or_false_and_nothing_else(variable, value):
    with pytest.raises(InvalidSetting, match=f"{variable}={value!r} is not allowed: give true or false"):
        Settings.from_env({variable: value})


def test_a_margin_and_call_bound_that_fill_the_functions_timeout_are_refused():
    env = {"FUNCTION_TIMEOUT_SECONDS": "60", "KINESIS_READ_TIMEOUT_SECONDS": "60"}
    with pytest.raises(
        InvalidSetting, match=r"= 63 s leave no time for one PutRecords call in FUNCTION_TIMEOUT_SECONDS=60"
    ):
        Settings.from_env(env)


def test_the_templates_timeouts_leave_time_for_calls():
    settings = Settings.from_env({"FUNCTION_TIMEOUT_SECONDS": "60"})
    assert settings.publish_margin_seconds + settings.call_seconds < 60


def test_a_model_version_longer_than_events_carry_is_refused():
    with pytest.raises(InvalidSetting, match="MODEL_VERSION has 257 characters; a version is at most 256"):
        Settings.from_env({"MODEL_VERSION": "v" * 257})


@pytest.mark.parametrize("name", ["Duration", "cost model", "x" * 33, "1cost"])
def test_a_consumer_name_that_cannot_end_an_event_id_is_refused(name):
    with pytest.raises(InvalidSetting, match="CONSUMER_NAME"):
        Settings.from_env({"CONSUMER_NAME": name})


def test_empty_variables_keep_their_local_defaults():
    assert Settings.from_env({"PUBLISH_MARGIN_SECONDS": "", "WEB_MAX_RIDES": "", "MODEL_URI": ""}) == Settings()


def test_the_default_models_are_the_registrys_champions_not_the_latest_versions():
    settings = Settings.from_env({})
    assert settings.model_uris == ("models:/ride-duration@champion", "models:/ride-cost@champion")
    assert settings.model_uri == "models:/ride-duration@champion"


def test_given_is_a_variables_value_only_when_the_environment_sets_it():
    assert given("MODEL_URI", {"MODEL_URI": "s3://models/ride-duration/3"}) == "s3://models/ride-duration/3"
    assert given("MODEL_URI", {"MODEL_URI": ""}) is None
    assert given("MODEL_URI", {}) is None, "never the default"


def test_a_functions_environment_gives_the_settings_it_runs_with():
    environment = {"MODEL_URI": "s3://models/ride-cost/2", "CONSUMER_NAME": "cost", "INPUT_STREAM_NAME": "rides"}
    settings = Settings.from_env(environment)
    assert (settings.model_uri, settings.consumer_name, settings.input_stream_name) == (
        "s3://models/ride-cost/2",
        "cost",
        "rides",
    )


def start(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **env}
    return subprocess.run(command, cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True, timeout=120)


def test_the_lambda_handler_does_not_start_with_a_bad_setting_and_says_which(tmp_path):
    started = start([sys.executable, "-c", "import lambda_function"], PUBLISH_MARGIN_SECONDS="inf")
    assert started.returncode != 0
    assert (
        started.stderr.strip()
        .splitlines()[-1]
        .endswith("InvalidSetting: PUBLISH_MARGIN_SECONDS='inf' is not allowed: give a number from 0 to 60")
    )


def test_a_command_with_a_bad_setting_exits_2_with_one_line():
    started = start(
        [sys.executable, "-m", "model_service", "score", "--year", "2021", "--month", "1"], WEB_MAX_RIDES="x"
    )
    assert started.returncode == 2
    assert started.stderr == "error: WEB_MAX_RIDES='x' is not allowed: give a whole number from 1 to 1,000,000\n"


def test_the_web_server_does_not_start_with_a_bad_setting_and_says_which_in_one_line():
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    started = start([gunicorn, "model_service.web:app_from_env()"], WEB_MAX_RIDES="-1")
    assert started.returncode == 2
    assert started.stderr == "error: WEB_MAX_RIDES='-1' is not allowed: give a whole number from 1 to 1,000,000\n"
