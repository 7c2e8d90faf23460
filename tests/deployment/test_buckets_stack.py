"""stacks/buckets.yaml's promises: the model and data buckets are kept, versioned, encrypted and closed to the public.

The buckets are a stack of their own (scripts/deploy_aws.py creates it as
<stack>-buckets), so deleting the service stack never deletes a model or a
month of trips; the model bucket's policy stays template.yaml's to set.
"""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.aws import TEMPLATE
from local_stack.deploy import parse_template

BUCKETS = TEMPLATE.parent / "stacks" / "buckets.yaml"
CONDITIONS = {"ModelBucket": "CreateModelBucket", "DataBucket": "CreateDataBucket"}
"""Each bucket -> the parameter that asks for it."""


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return parse_template(BUCKETS.read_text())


def buckets(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in stack["Resources"].items() if r["Type"] == "AWS::S3::Bucket"}


def test_the_stack_holds_the_model_and_the_data_bucket(stack):
    assert set(buckets(stack)) == set(CONDITIONS)


@pytest.mark.parametrize("name", CONDITIONS)
def test_a_bucket_is_kept_when_its_stack_is_deleted_or_it_would_be_replaced(stack, name):
    bucket = stack["Resources"][name]
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")


@pytest.mark.parametrize("name", CONDITIONS)
def test_a_bucket_is_versioned(stack, name):
    assert stack["Resources"][name]["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


@pytest.mark.parametrize("name", CONDITIONS)
def test_a_bucket_is_encrypted_at_rest(stack, name):
    (rule,) = stack["Resources"][name]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms", "aws:kms:dsse")


@pytest.mark.parametrize("name", CONDITIONS)
def test_a_bucket_is_closed_to_the_public_and_its_objects_are_its_owners(stack, name):
    properties = stack["Resources"][name]["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


@pytest.mark.parametrize(("name", "parameter"), CONDITIONS.items())
def test_a_bucket_is_created_only_when_asked_and_its_name_is_an_output(stack, name, parameter):
    condition = stack["Resources"][name]["Condition"]
    assert stack["Conditions"][condition] == {"Fn::Equals": [{"Ref": parameter}, "true"]}
    assert stack["Parameters"][parameter]["AllowedValues"] == ["true", "false"]
    output = stack["Outputs"][name]
    assert (output["Condition"], output["Value"]) == (condition, {"Ref": name})


def test_the_model_buckets_policy_is_left_to_the_service_stack(stack):
    """template.yaml's ModelBucketPolicy owns the model bucket's whole policy; a second one would undo it."""
    policies = [r for r in stack["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"]
    assert [p["Properties"]["Bucket"] for p in policies] == [{"Ref": "DataBucket"}]
    service = parse_template(TEMPLATE.read_text())
    assert service["Resources"]["ModelBucketPolicy"]["Properties"]["Bucket"] == {"Ref": "ModelBucket"}


def test_the_data_bucket_refuses_requests_without_tls(stack):
    (policy,) = [r for r in stack["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Deny", "s3:*")
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_service_stack_creates_no_bucket(stack):
    """Deleting the service stack must never delete a model or a trip: its buckets are all in stacks/buckets.yaml."""
    service = parse_template(TEMPLATE.read_text())
    assert [n for n, r in service["Resources"].items() if r["Type"] == "AWS::S3::Bucket"] == []
    assert set(buckets(stack)) <= set(service["Parameters"]), "each bucket is the service parameter of its name"
