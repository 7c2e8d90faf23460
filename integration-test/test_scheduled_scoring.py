"""Scheduled scoring on the deployed template: the schedule's event in, each month's predictions file in S3 out.

LocalStack deploys the ``AWS::Scheduler::Schedule`` but never fires it, so the
tests read the deployed schedule (its target, its input, its retry policy and
dead-letter queue) and invoke its target as Scheduler does: asynchronously,
with the schedule's input and ``<aws.scheduler.scheduled-time>`` filled in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from local_stack.aws import client_environment, wait_until
from model_service.cli import main
from model_service.sample_data import make_trips
from model_service.service import PredictionService, RideModels
from tests.aws.test_batch import COURSE_COLUMNS

DATA_BUCKET = "ride-duration-data"
"""The template's default DataBucket; the template expects it to exist, as a data lake's bucket would."""
MONTHS = {"2021-01": 700, "2021-02": 500}
"""The two monthly files put in S3, and their rows."""
RUN_TIMEOUT = 120


@pytest.fixture(scope="module")
def trips(clients, stack, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Two TLC-shaped monthly files in the data bucket, where the scoring function reads them."""
    s3 = clients("s3")
    s3.create_bucket(Bucket=DATA_BUCKET)
    folder = tmp_path_factory.mktemp("months")
    months = {}
    for month, rows in MONTHS.items():
        months[month] = make_trips(rows, seed=rows, start=f"{month}-01")
        months[month].to_parquet(folder / f"{month}.parquet")
        s3.upload_file(str(folder / f"{month}.parquet"), DATA_BUCKET, f"trips/green_tripdata_{month}.parquet")
    return months


@pytest.fixture(scope="module")
def schedule(clients, stack) -> dict:
    return clients("scheduler").get_schedule(Name=stack.outputs["ScoringScheduleName"])


def scheduled_event(schedule: dict, time: str) -> bytes:
    """The schedule's input as Scheduler sends it when it fires at ``time``."""
    return schedule["Target"]["Input"].replace("<aws.scheduler.scheduled-time>", time).encode()


def fire(clients, schedule: dict, time: str) -> None:
    """Invoke the schedule's target the way Scheduler does: asynchronously, with the schedule's input."""
    response = clients("lambda").invoke(
        FunctionName=schedule["Target"]["Arn"], InvocationType="Event", Payload=scheduled_event(schedule, time)
    )
    assert response["StatusCode"] == 202


def output_key(month: str) -> str:
    return f"predictions/green/{month}.parquet"


def read_output(clients, month: str, folder: Path) -> pd.DataFrame:
    clients("s3").download_file(DATA_BUCKET, output_key(month), str(folder / f"{month}.parquet"))
    return pd.read_parquet(folder / f"{month}.parquet")


def object_exists(clients, key: str) -> bool:
    return clients("s3").list_objects_v2(Bucket=DATA_BUCKET, Prefix=key).get("KeyCount", 0) > 0


def queue_arn(clients, url: str) -> str:
    return clients("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_the_schedule_runs_the_scoring_function_monthly_with_retries_and_a_dead_letter_queue(clients, stack, schedule):
    dead_letters = queue_arn(clients, stack.outputs["ScoringDeadLetterQueueUrl"])
    target = schedule["Target"]

    assert target["Arn"] == stack.outputs["ScoringFunctionArn"]
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (
        "cron(0 6 2 * ? *)",
        "America/New_York",
    )
    assert schedule["State"] == "ENABLED"
    assert json.loads(scheduled_event(schedule, "2021-03-02T11:00:00Z")) == {
        "taxi_type": "green",
        "scheduled_time": "2021-03-02T11:00:00Z",
        "time_zone": "America/New_York",
    }
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 10}
    assert target["DeadLetterConfig"]["Arn"] == dead_letters
    invoke_config = clients("lambda").get_function_event_invoke_config(
        FunctionName=stack.outputs["ScoringFunctionName"]
    )
    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == dead_letters


def test_each_scheduled_run_scores_the_month_before_it_into_s3_with_both_models_predictions(
    clients, stack, schedule, trips, model_dirs, tmp_path, phase
):
    offline = RideModels([PredictionService.load(str(model_dirs[target])) for target in ("duration", "cost")])

    with phase("two scheduled scoring runs"):
        fire(clients, schedule, "2021-02-02T11:00:00Z")
        fire(clients, schedule, "2021-03-02T11:00:00Z")
        wait_until(
            lambda: all(object_exists(clients, output_key(m)) for m in MONTHS), RUN_TIMEOUT, "both months' outputs"
        )

    for month, source in trips.items():
        output = read_output(clients, month, tmp_path)
        expected = offline.predict_columns(
            source.PULocationID.to_numpy(), source.DOLocationID.to_numpy(), source.trip_distance.to_numpy()
        )
        assert list(output.columns) == [
            *COURSE_COLUMNS,
            "actual_cost",
            "predicted_cost",
            "cost_diff",
            "cost_model_version",
        ]
        assert len(output) == MONTHS[month]
        assert output["predicted_duration"].tolist() == pytest.approx(expected["duration"].tolist())
        assert output["predicted_cost"].tolist() == pytest.approx(expected["cost"].tolist())
        assert output["actual_cost"].tolist() == source.fare_amount.tolist()
        assert (set(output["model_version"]), set(output["cost_model_version"])) == (
            {offline.versions["duration"]},
            {offline.versions["cost"]},
        )
        assert output["ride_id"].tolist() == [f"{month.replace('-', '/')}_{i}" for i in range(MONTHS[month])]


def test_a_missing_month_lands_in_the_dead_letter_queue_with_its_reason(clients, stack, schedule, localstack, phase):
    queue = stack.outputs["ScoringDeadLetterQueueUrl"]
    event = json.loads(scheduled_event(schedule, "2021-04-02T10:00:00Z"))  # scores 2021-03, which is not in S3
    dead: list[dict] = []

    def dead_lettered() -> bool:
        messages = clients("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        dead.extend(json.loads(m["Body"]) for m in messages)
        return any(d.get("requestPayload") == event for d in dead)

    # Lambda waits a minute, then two, between retries of an asynchronous invocation; one second here.
    localstack.set_config("LAMBDA_RETRY_BASE_DELAY_SECONDS", 1)
    try:
        with phase("a missing month, retried, to the dead-letter queue"):
            fire(clients, schedule, "2021-04-02T10:00:00Z")
            wait_until(dead_lettered, RUN_TIMEOUT, "the failed run in the scoring dead-letter queue")
    finally:
        localstack.set_config("LAMBDA_RETRY_BASE_DELAY_SECONDS", 60)

    (failure,) = [d for d in dead if d.get("requestPayload") == event]
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert failure["responsePayload"]["errorType"] == "InputNotFound"
    assert failure["responsePayload"]["errorMessage"] == (
        f"s3://{DATA_BUCKET}/trips/green_tripdata_2021-03.parquet: no such object"
    )
    assert not object_exists(clients, output_key("2021-03"))


def test_a_backfill_on_the_function_scores_each_month_and_then_skips_them(
    clients, stack, trips, localstack, monkeypatch, capsys
):
    for name, value in client_environment(localstack.endpoint).items():
        monkeypatch.setenv(name, value)
    command = ["backfill", "--function", stack.outputs["ScoringFunctionName"], "--from", "2021-01", "--to", "2021-02"]

    forced = main([*command, "--force", "--parallel", "2"])
    forced_table = capsys.readouterr().out
    again = main(command)
    again_table = capsys.readouterr().out

    assert (forced, again) == (0, 0)
    for month, rows in MONTHS.items():
        assert f"{month}  scored   {rows:>12,}" in forced_table
        assert f"{month}  skipped" in again_table
