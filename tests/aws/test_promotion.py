"""Changing a model by its aliases: training names a challenger, promote and rollback move champion, and say so.

Against a real local MLflow challenged_registry, with moto's S3 for the copies; the update
of the real stack (``--stack-name``), with rides flowing, is the integration
tests' (integration-test/test_model_change.py).
"""

from __future__ import annotations

import boto3

from model_service.cli import main
from model_service.model.aliases import CHALLENGER, CHAMPION, REPLACED_TAG, ROLLED_BACK_TAG
from model_service.model.target import COST

MODEL = "ride-duration"


def aliases(client) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(MODEL).aliases.items()}


def printed(capsys) -> dict[str, str]:
    return dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines() if "=" in line and " " not in line)


def test_a_models_first_version_becomes_champion_and_the_next_its_challenger(challenged_registry):
    client, (first, second) = challenged_registry
    assert (first.alias, first.previous, second.alias, second.previous) == (CHAMPION, None, CHALLENGER, None)
    assert aliases(client) == {CHAMPION: "1", CHALLENGER: "2"}


def test_challenge_pins_the_challenger_and_prints_the_shadow_parameters(challenged_registry, capsys):
    assert main(["challenge", "--model", MODEL]) == 0
    out = printed(capsys)
    assert out["DurationChallengerVersion"] == "2"
    assert out["DurationChallengerUri"].endswith("/artifacts")
    assert aliases(challenged_registry[0]) == {CHAMPION: "1", CHALLENGER: "2"}, "trying a challenger moves no alias"


def test_promote_makes_the_challenger_champion_records_what_it_replaced_and_clears_the_shadow(
    challenged_registry, capsys
):
    client, _ = challenged_registry
    assert main(["promote", "--model", MODEL]) == 0

    out = printed(capsys)
    assert (out["DurationModelVersion"], out["DurationChallengerUri"], out["DurationChallengerVersion"]) == (
        "2",
        "",
        "",
    )
    assert aliases(client) == {CHAMPION: "2"}
    assert client.get_model_version(MODEL, "2").tags[REPLACED_TAG] == "1"


def test_rollback_returns_champion_to_the_version_the_promotion_replaced(challenged_registry, capsys):
    client, _ = challenged_registry
    main(["promote", "--model", MODEL])
    capsys.readouterr()

    assert main(["rollback", "--model", MODEL]) == 0

    assert printed(capsys)["DurationModelVersion"] == "1"
    assert aliases(client) == {CHAMPION: "1"}
    assert client.get_model_version(MODEL, "2").tags[ROLLED_BACK_TAG] == "true"


def test_promote_without_a_challenger_exits_2_and_moves_nothing(challenged_registry, capsys):
    client, _ = challenged_registry
    client.delete_registered_model_alias(MODEL, CHALLENGER)
    assert main(["promote", "--model", MODEL]) == 2
    assert "ride-duration has no challenger: nothing to promote" in capsys.readouterr().err
    assert aliases(client) == {CHAMPION: "1"}


def test_rollback_of_a_champion_no_promotion_made_exits_2(challenged_registry, capsys):
    assert main(["rollback", "--model", MODEL]) == 2
    assert "replaced no version" in capsys.readouterr().err
    assert aliases(challenged_registry[0]) == {CHAMPION: "1", CHALLENGER: "2"}


def test_a_promotion_whose_deployment_fails_moves_no_alias(challenged_registry, aws, capsys):
    assert main(["promote", "--model", MODEL, "--upload-to", "s3://no-such-bucket/models"]) == 2
    assert "cannot copy the model to s3://no-such-bucket/models/ride-duration/2: " in capsys.readouterr().err
    assert aliases(challenged_registry[0]) == {CHAMPION: "1", CHALLENGER: "2"}


def test_the_promoted_version_is_copied_under_its_version_for_the_functions(challenged_registry, aws, capsys):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models")
    assert main(["promote", "--model", MODEL, "--upload-to", "s3://models/prefix"]) == 0
    assert printed(capsys)["DurationModelUri"] == "s3://models/prefix/ride-duration/2"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="models")["Contents"]}
    assert "prefix/ride-duration/2/MLmodel" in keys


def test_each_target_has_its_own_parameters():
    from model_service.model.deploy import stack_parameters

    assert stack_parameters(COST, "Challenger", "s3://m/c/2", "2") == {
        "CostChallengerUri": "s3://m/c/2",
        "CostChallengerVersion": "2",
    }
