"""template.yaml's promises: records kept a week, no batch given up by default, every alarm with an action."""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.aws import TEMPLATE
from local_stack.deploy import parse_template
from tests.lambda_simulation import EventSourceSettings, at_default

FUNCTIONS = ("PredictionFunction", "DecisionFunction")
OUTPUT_STREAMS = ("PredictionsStream", "DecisionsStream", "DeadLetterStream")
ALARM_TOPIC = {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return parse_template(TEMPLATE.read_text())


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def alarms_on(template: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """The properties of each alarm on ``metric``, alone or inside metric math."""
    found = []
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        names = [properties.get("MetricName")] + [
            m["MetricStat"]["Metric"]["MetricName"] for m in properties.get("Metrics", []) if "MetricStat" in m
        ]
        if metric in names:
            found.append(properties)
    return found


def test_every_stream_keeps_its_records_a_week_by_default(template):
    for name, stream in resources(template, "AWS::Kinesis::Stream").items():
        assert at_default(template, stream["Properties"]["RetentionPeriodHours"]) >= 168, name


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_event_source_gives_a_batch_up_within_the_retention_by_default(function):
    settings = EventSourceSettings.from_template(function)
    assert settings.maximum_retry_attempts == -1
    assert settings.maximum_record_age_seconds == -1
    assert settings.bisect_on_error
    assert settings.report_batch_item_failures


def test_every_alarm_notifies_the_alarm_topic(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 15
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [ALARM_TOPIC], name


def test_the_stack_creates_the_alarm_topic_when_none_is_given(template):
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert template["Resources"]["AlarmTopic"]["Condition"] == "CreateAlarmTopic"
    assert template["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}


@pytest.mark.parametrize("metric", ["Errors", "Throttles", "IteratorAge"])
def test_each_function_has_an_alarm_on_its_lambda_metric(template, metric):
    watched = {
        a["Dimensions"][0]["Value"]["Ref"] for a in alarms_on(template, metric) if a["Namespace"] == "AWS/Lambda"
    }
    assert watched == set(FUNCTIONS)


@pytest.mark.parametrize("metric", ["UnpublishedRecords", "DeadLetters"])
def test_each_function_has_an_alarm_on_the_metric_it_emits(template, metric):
    """The alarms' namespace and service dimension are the ones the functions' EMF metrics carry."""
    services = {
        template["Resources"][f]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for f in FUNCTIONS
    }
    watched = set()
    for alarm in alarms_on(template, metric):
        stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m] or [alarm]
        for stat in stats:
            assert stat["Namespace"] == {"Ref": "MetricsNamespace"}
            watched |= {d["Value"] for d in stat["Dimensions"] if d["Name"] == "service"}
    assert watched == services


def test_dead_letters_alarm_on_their_share_of_the_records_in(template):
    for alarm in alarms_on(template, "DeadLetters"):
        (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
        assert "deadLetters / recordsIn" in expression
        assert alarm["Threshold"] == {"Ref": "DeadLetterAlarmPercent"}


def test_each_output_stream_has_an_alarm_on_write_throttling(template):
    watched = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms_on(template, "WriteProvisionedThroughputExceeded")}
    assert watched == set(OUTPUT_STREAMS)


def model_loaders(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The functions whose environment names a MODEL_URI, by name."""
    return {
        name: function["Properties"]
        for name, function in resources(template, "AWS::Serverless::Function").items()
        if "MODEL_URI" in function["Properties"]["Environment"]["Variables"]
    }


def test_every_function_that_loads_the_model_gets_the_same_model_settings(template):
    loaders = {name: p["Environment"]["Variables"] for name, p in model_loaders(template).items()}

    assert set(loaders) == {"PredictionFunction", "ScoringFunction"}
    for variables in loaders.values():
        assert variables["MODEL_VERSION"] == {"Ref": "ModelVersion"}
        assert variables["MODEL_ALLOW_PICKLE"] == {"Ref": "ModelAllowPickle"}
    assert loaders["PredictionFunction"]["MODEL_URI"] == loaders["ScoringFunction"]["MODEL_URI"]


def test_every_function_that_loads_the_model_may_read_it(template):
    for name, properties in model_loaders(template).items():
        role = template["Resources"][properties["Role"]["Fn::GetAtt"][0]]
        assert {"Ref": "ModelReaderPolicy"} in role["Properties"]["ManagedPolicyArns"], name
