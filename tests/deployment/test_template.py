"""template.yaml's promises: records kept a week, no batch given up, every alarm with an action, consumers alike.

The model consumers are nested stacks of stacks/model-consumer.yaml, so
what holds for one of them is read from that template, with the parameters
template.yaml passes each consumer.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from local_stack.aws import MODEL_WRITER_ARN, TEMPLATE
from local_stack.deploy import parse_template
from tests.lambda_simulation import EventSourceSettings, at_default

CONSUMERS = ("DurationConsumer", "CostConsumer")
SHADOWS = ("DurationShadowConsumer", "CostShadowConsumer")
STREAM_FUNCTIONS = (*CONSUMERS, "DecisionFunction")
OUTPUT_STREAMS = ("PredictionsStream", "DecisionsStream", "DeadLetterStream")
ALARM_TOPIC = {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}
PER_CONSUMER = {"ConsumerName", "ModelUri", "ModelVersion"}
"""The only parameters in which one consumer differs from another."""


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return parse_template(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def consumer() -> dict[str, Any]:
    """stacks/model-consumer.yaml, the template of every model consumer."""
    return parse_template((TEMPLATE.parent / "stacks" / "model-consumer.yaml").read_text())


def passed(template: dict[str, Any], name: str) -> dict[str, Any]:
    """The parameters template.yaml passes one of its consumers."""
    return template["Resources"][name]["Properties"]["Parameters"]


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


@pytest.mark.parametrize("function", STREAM_FUNCTIONS)
def test_no_event_source_gives_a_batch_up_within_the_retention_by_default(function):
    settings = EventSourceSettings.from_template(function)
    assert settings.maximum_retry_attempts == -1
    assert settings.maximum_record_age_seconds == -1
    assert settings.bisect_on_error
    assert settings.report_batch_item_failures


def test_the_model_consumers_are_one_template_and_differ_only_in_their_model(template):
    applications = resources(template, "AWS::Serverless::Application")
    assert set(applications) == {*CONSUMERS, *SHADOWS}
    assert {a["Properties"]["Location"] for a in applications.values()} == {"stacks/model-consumer.yaml"}
    shared = [{k: v for k, v in passed(template, name).items() if k not in PER_CONSUMER} for name in CONSUMERS]
    assert all(parameters == shared[0] for parameters in shared)
    assert [passed(template, name)["ConsumerName"] for name in CONSUMERS] == ["duration", "cost"]


SHADOW_DIFFERS_IN = {
    "ConsumerName": lambda c: f"{c['ConsumerName']}-shadow",
    "ModelUri": lambda c: {"Ref": f"{c['ConsumerName'].capitalize()}ChallengerUri"},
    "ModelVersion": lambda c: {"Ref": f"{c['ConsumerName'].capitalize()}ChallengerVersion"},
    "PredictionsStreamName": lambda c: {"Ref": "ShadowPredictionsStream"},
    "DeadLetterStreamName": lambda c: {"Ref": "ShadowDeadLetterStream"},
    "StartingPosition": lambda c: "LATEST",
    "Deployment": lambda c: "AllAtOnce",
}
"""What a shadow changes of its champion's consumer: its model, its streams, where it starts, how it deploys."""


@pytest.mark.parametrize(("champion", "shadow"), list(zip(CONSUMERS, SHADOWS, strict=True)))
def test_a_shadow_is_its_champions_consumer_with_the_challenger_and_the_shadow_streams(template, champion, shadow):
    ours, theirs = passed(template, champion), passed(template, shadow)
    assert {k: v for k, v in theirs.items() if k not in SHADOW_DIFFERS_IN} == {
        k: v for k, v in ours.items() if k not in SHADOW_DIFFERS_IN
    }
    assert {k: theirs[k] for k in SHADOW_DIFFERS_IN} == {k: rule(ours) for k, rule in SHADOW_DIFFERS_IN.items()}
    condition = template["Resources"][shadow]["Condition"]
    assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [theirs["ModelUri"], ""]}]}


def test_the_shadow_streams_exist_only_while_there_is_a_challenger_and_the_decision_never_reads_them(template):
    for stream in ("ShadowPredictionsStream", "ShadowDeadLetterStream"):
        assert template["Resources"][stream]["Condition"] == "HasChallenger"
    assert template["Conditions"]["HasChallenger"] == {
        "Fn::Or": [{"Fn::Condition": "HasDurationChallenger"}, {"Fn::Condition": "HasCostChallenger"}]
    }
    decision_source = template["Resources"]["DecisionFunction"]["Properties"]["Events"]
    assert "Shadow" not in str(decision_source)


def test_the_event_source_invokes_the_live_alias_of_a_version_published_for_each_model(consumer):
    resources_ = consumer["Resources"]
    mapping = resources_["RideEvents"]
    assert (mapping["Type"], mapping["Properties"]["FunctionName"]) == (
        "AWS::Lambda::EventSourceMapping",
        {"Ref": "LiveAlias"},
    )
    alias = resources_["LiveAlias"]["Properties"]
    assert (alias["Name"], alias["FunctionVersion"]) == ("live", {"Fn::GetAtt": ["FunctionVersion", "Version"]})
    version = resources_["FunctionVersion"]
    assert version["UpdateReplacePolicy"] == "Retain", "the old version stays for the alias to return to"
    described = version["Properties"]["Description"]["Fn::Sub"]
    for setting in ("ModelUri", "ModelVersion", "ImageUri", "MemorySize", "Timeout", "ModelAllowPickle"):
        assert f"${{{setting}}}" in described, f"a new {setting} must publish a new version"
    assert "Events" not in resources_["Function"]["Properties"], "$LATEST is never invoked by the stream"


def test_a_canary_deployment_is_an_option_rolled_back_by_the_consumers_alarms(template, consumer):
    assert template["Parameters"]["ConsumerDeployment"]["Default"] == "AllAtOnce"
    assert {passed(template, name)["Deployment"]["Ref"] for name in CONSUMERS} == {"ConsumerDeployment"}
    group = consumer["Resources"]["DeploymentGroup"]
    assert group["Condition"] == "UseCodeDeploy"
    properties = group["Properties"]
    assert properties["DeploymentConfigName"] == {"Fn::Sub": "CodeDeployDefault.Lambda${Deployment}"}
    assert {a["Name"]["Ref"] for a in properties["AlarmConfiguration"]["Alarms"]} == {
        "ErrorsAlarm",
        "UnpublishedRecordsAlarm",
    }
    assert "DEPLOYMENT_STOP_ON_ALARM" in properties["AutoRollbackConfiguration"]["Events"]
    condition, update, otherwise = consumer["Resources"]["LiveAlias"]["UpdatePolicy"]["Fn::If"]
    assert (condition, otherwise) == ("UseCodeDeploy", {"Ref": "AWS::NoValue"})
    assert update["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"] == {"Ref": "DeploymentGroup"}


@pytest.mark.parametrize("name", [*CONSUMERS, *SHADOWS])
def test_each_consumer_passes_every_parameter_its_template_needs_and_no_other(template, consumer, name):
    declared = consumer["Parameters"]
    required = {p for p, spec in declared.items() if "Default" not in spec}
    assert required <= set(passed(template, name)) <= set(declared)


def test_every_alarm_notifies_the_alarm_topic(template, consumer):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 10
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [ALARM_TOPIC], name
    for name, alarm in resources(consumer, "AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopicArn"}], name
    for name in CONSUMERS:
        assert passed(template, name)["AlarmTopicArn"] == ALARM_TOPIC


def test_the_stack_creates_the_alarm_topic_when_none_is_given(template):
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert template["Resources"]["AlarmTopic"]["Condition"] == "CreateAlarmTopic"
    assert template["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}


@pytest.mark.parametrize("metric", ["Errors", "Throttles", "IteratorAge"])
def test_each_function_has_an_alarm_on_its_lambda_metric(template, consumer, metric):
    def watched(document: dict[str, Any]) -> set[str]:
        return {
            a["Dimensions"][0]["Value"]["Ref"] for a in alarms_on(document, metric) if a["Namespace"] == "AWS/Lambda"
        }

    assert watched(template) == {"DecisionFunction"}
    assert watched(consumer) == {"Function"}


def emitted_services(document: dict[str, Any], metric: str) -> set[Any]:
    """The service dimensions of the alarms on ``metric``, checked to be in the functions' EMF namespace."""
    services = set()
    for alarm in alarms_on(document, metric):
        stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m] or [alarm]
        for stat in stats:
            assert stat["Namespace"] == {"Ref": "MetricsNamespace"}
            services |= {str(d["Value"]) for d in stat["Dimensions"] if d["Name"] == "service"}
    return services


@pytest.mark.parametrize("metric", ["UnpublishedRecords", "DeadLetters"])
def test_each_function_has_an_alarm_on_the_metric_it_emits(template, consumer, metric):
    """The alarms' namespace and service dimension are the ones the functions' EMF metrics carry."""
    decision = template["Resources"]["DecisionFunction"]["Properties"]["Environment"]["Variables"]
    assert emitted_services(template, metric) == {decision["POWERTOOLS_SERVICE_NAME"]}
    function = consumer["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    assert emitted_services(consumer, metric) == {str(function["POWERTOOLS_SERVICE_NAME"])}


def test_dead_letters_alarm_on_their_share_of_the_records_in(template, consumer):
    for alarm in alarms_on(template, "DeadLetters") + alarms_on(consumer, "DeadLetters"):
        (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
        assert "deadLetters / recordsIn" in expression
        assert alarm["Threshold"] == {"Ref": "DeadLetterAlarmPercent"}


def test_each_output_stream_has_an_alarm_on_write_throttling(template):
    watched = {a["Dimensions"][0]["Value"]["Ref"] for a in alarms_on(template, "WriteProvisionedThroughputExceeded")}
    assert watched == set(OUTPUT_STREAMS)


def test_the_scoring_function_serves_the_consumers_models_with_their_versions(template):
    scoring = template["Resources"]["ScoringFunction"]["Properties"]["Environment"]["Variables"]
    separator, uris = scoring["MODEL_URIS"]["Fn::Join"]
    assert separator == ","
    assert uris == [passed(template, name)["ModelUri"] for name in CONSUMERS]
    versions = [{"Ref": f"{name.removesuffix('Consumer')}ModelVersion"} for name in CONSUMERS]
    assert [passed(template, name)["ModelVersion"] for name in CONSUMERS] == versions
    assert scoring["MODEL_VERSIONS"] == {"Fn::Sub": "${DurationModelVersion},${CostModelVersion}"}
    assert scoring["MODEL_ALLOW_PICKLE"] == {"Ref": "ModelAllowPickle"}
    assert {passed(template, name)["ModelAllowPickle"]["Ref"] for name in CONSUMERS} == {"ModelAllowPickle"}


def test_every_function_that_loads_a_model_may_read_it(template, consumer):
    scoring_role = template["Resources"]["ScoringFunction"]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert {"Ref": "ModelReaderPolicy"} in template["Resources"][scoring_role]["Properties"]["ManagedPolicyArns"]
    role = consumer["Resources"]["FunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Ref": "ModelReaderPolicyArn"}]
    assert {passed(template, name)["ModelReaderPolicyArn"]["Ref"] for name in CONSUMERS} == {"ModelReaderPolicy"}


def test_enhanced_fan_out_is_an_option_that_maps_each_consumer_on_its_own_stream_consumer(template, consumer):
    assert template["Parameters"]["EnhancedFanOut"]["Default"] == "false"
    assert {passed(template, name)["EnhancedFanOut"]["Ref"] for name in CONSUMERS} == {"EnhancedFanOut"}
    stream_consumer = consumer["Resources"]["StreamConsumer"]
    assert (stream_consumer["Type"], stream_consumer["Condition"]) == (
        "AWS::Kinesis::StreamConsumer",
        "UseEnhancedFanOut",
    )
    source = consumer["Resources"]["RideEvents"]["Properties"]
    condition, fan_out, shared = source["EventSourceArn"]["Fn::If"]
    assert (condition, fan_out) == ("UseEnhancedFanOut", {"Ref": "StreamConsumer"})
    assert "stream/${InputStreamName}" in shared["Fn::Sub"]
    statements = consumer["Resources"]["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (grant,) = [s["Fn::If"] for s in statements if "Fn::If" in s]
    assert grant[0] == "UseEnhancedFanOut"
    assert set(grant[1]["Action"]) == {"kinesis:SubscribeToShard", "kinesis:DescribeStreamConsumer"}
    assert grant[1]["Resource"] == {"Ref": "StreamConsumer"}


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every IAM statement of the template's roles and managed policies, both branches of a conditional one."""
    found = []
    for resource in document["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents = [properties["PolicyDocument"]]
        else:
            continue
        for policy in documents:
            for statement in policy["Statement"]:
                branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
                found.extend(b for b in branches if b != {"Ref": "AWS::NoValue"})
    return found


@pytest.mark.parametrize("document", ["template", "consumer"])
def test_no_role_is_granted_an_action_on_every_resource(document, request):
    wide = [s.get("Sid") for s in statements(request.getfixturevalue(document)) if s.get("Resource") == "*"]
    assert wide == []


def test_every_log_group_is_encrypted_with_the_stacks_own_key(template, consumer):
    key = {"Fn::GetAtt": ["LogsAndAlarmsKey", "Arn"]}
    assert {
        name: g["Properties"].get("KmsKeyId") for name, g in resources(template, "AWS::Logs::LogGroup").items()
    } == {
        "DecisionLogGroup": key,
        "ScoringLogGroup": key,
    }
    assert consumer["Resources"]["LogGroup"]["Properties"]["KmsKeyId"] == {"Ref": "LogKmsKeyArn"}
    assert {passed(template, name)["LogKmsKeyArn"] == key for name in CONSUMERS} == {True}


def test_the_alarm_topic_is_encrypted_with_a_key_alarms_may_publish_with(template):
    assert template["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "LogsAndAlarmsKey"}
    key = template["Resources"]["LogsAndAlarmsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    grants = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    assert grants["AlarmsPublishToTheEncryptedTopic"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    logs = grants["LogsEncryptThisStacksLogGroups"]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert logs["Fn::Sub"].endswith("log-group:/aws/lambda/${AWS::StackName}-*")


def test_only_model_writers_may_change_the_model_buckets_policy_replication_or_acl(template):
    policy = template["Resources"]["ModelBucketPolicy"]["Properties"]["PolicyDocument"]
    guards = {s["Sid"]: s for s in policy["Statement"]}["ModelBucketSettingsChangeableOnlyByModelWriters"]
    assert guards["Effect"] == "Deny"
    assert {"s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutReplicationConfiguration", "s3:PutBucketAcl"} <= set(
        guards["Action"]
    )
    assert guards["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": {"Ref": "ModelWriterArns"}}}


def test_model_writer_arns_of_star_are_refused_before_anything_is_created(template):
    (assertion,) = template["Rules"]["ModelWritersAreNamed"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Contains": [{"Ref": "ModelWriterArns"}, "*"]}]}


@pytest.mark.parametrize(
    ("arn", "accepted"),
    [
        ("arn:aws:iam::123456789012:role/ride-duration-deployer", True),
        ("arn:aws:iam::123456789012:role/ci/deployers/ModelWriter", True),
        ("arn:aws:iam::123456789012:role/deployers/*", True),
        ("arn:aws:iam::123456789012:user/alice", True),
        (MODEL_WRITER_ARN, True),  # what the integration tests deploy LocalStack with
        ("arn:aws-us-gov:iam::123456789012:role/ModelWriter", True),
        ("arn:aws:sts::123456789012:assumed-role/ride-duration-deployer/alice", False),
        ("arn:aws:iam::123456789012:group/deployers", False),
        ("arn:aws:iam::123456789012:role/", False),
        ("*", False),
        ("ride-duration-deployer", False),
        (" arn:aws:iam::123456789012:role/ModelWriter", False),
    ],
)
def test_model_writer_arns_are_role_user_or_root_arns_never_session_arns(template, arn, accepted):
    """The pattern applies to each ARN of the list: a session ARN matches no caller's aws:PrincipalArn."""
    parameter = template["Parameters"]["ModelWriterArns"]
    assert parameter["Type"] == "CommaDelimitedList"
    assert (re.fullmatch(parameter["AllowedPattern"], arn) is not None) is accepted
    assert "session ARN" in parameter["Description"]
    assert "replaces the model bucket's whole bucket policy" in " ".join(parameter["Description"].split())
