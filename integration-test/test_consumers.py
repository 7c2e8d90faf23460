"""The ride stream's consumers are independent, and a new one needs a model and a template resource, no code.

On the session's stack: throttling one consumer's writes leaves the other's
output complete and on time; a third consumer added to template.yaml serves
its model's predictions, which the decision step decides as ``no_rule``.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from local_stack import aws as local_aws
from model_service.kinesis.read import StreamTail
from model_service.model.target import Target
from tests.factories import ride_payload
from tests.streams import put
from tests.throttling_proxy import ThrottlingProxy

THROTTLED_SECONDS = 20
ON_TIME_SECONDS = 10
"""The unthrottled consumer's predictions all arrive within this (a shard poll and a batch take a second or two)."""
DELIVERY_TIMEOUT = 90

TIP = Target(
    name="tip",
    unit="USD",
    event_model="ride_tip_prediction_model",
    event_field="ride_tip",
    low=0.0,
    high=1000.0,
    actual="tip_amount",
)
"""A third model's target, which no code of the project names."""


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


def follow(clients, stream: str) -> StreamTail:
    tail = StreamTail(clients("kinesis"), stream, position="LATEST")
    tail.poll()
    return tail


def events_of(tail: StreamTail, wanted, count: int, what: str, timeout: float = DELIVERY_TIMEOUT) -> list[dict]:
    found: list[dict] = []

    def enough() -> bool:
        found.extend(e for e in tail.events() if wanted(e))
        return len(found) >= count

    local_aws.wait_until(enough, timeout, f"{count} {what}", interval=0.25)
    return found


def predictions_of(tag: str, model: str):
    return lambda e: e.get("model") == model and str(e.get("prediction", {}).get("ride_id", "")).startswith(tag)


def test_throttling_one_consumers_writes_leaves_the_others_output_complete_and_on_time(clients, localstack, stack, tag):
    lam = clients("lambda")
    variables = lam.get_function_configuration(FunctionName=stack.cost_function)["Environment"]["Variables"]
    predictions = follow(clients, stack.predictions_stream)
    with ThrottlingProxy(localstack.endpoint).running() as proxy:
        # Only the cost function's Kinesis calls go through the proxy: the SDKs' per-service endpoint.
        local_aws.set_live_environment(
            clients, stack.cost_function, {**variables, "AWS_ENDPOINT_URL_KINESIS": proxy.url}
        )
        try:
            proxy.throttled.set()
            rides = [ride_payload(f"{tag}-{i}", distance=1 + i) for i in range(20)]
            put_at = time.monotonic()
            put(localstack.endpoint, stack.input_stream, [json.dumps(r).encode() for r in rides])

            durations = events_of(
                predictions,
                predictions_of(tag, "ride_duration_prediction_model"),
                len(rides),
                "duration predictions while the cost consumer is throttled",
                timeout=ON_TIME_SECONDS,
            )
            on_time = time.monotonic() - put_at
            time.sleep(max(0.0, THROTTLED_SECONDS - (time.monotonic() - put_at)))
            early = [e for e in predictions.events() if predictions_of(tag, "ride_cost_prediction_model")(e)]
            assert early == [], "no cost prediction got through the throttling"
            assert proxy.refused_entries >= len(rides), "the cost consumer tried, and was throttled"
        finally:
            proxy.throttled.clear()
        costs = events_of(
            predictions, predictions_of(tag, "ride_cost_prediction_model"), len(rides), "cost predictions"
        )
        local_aws.set_live_environment(clients, stack.cost_function, variables)

    assert {e["prediction"]["ride_id"] for e in durations} == {r["ride_id"] for r in rides}
    assert on_time < ON_TIME_SECONDS
    assert {e["prediction"]["ride_id"] for e in costs} == {r["ride_id"] for r in rides}
    assert all(e["event_id"].endswith("/cost") for e in costs)


def with_consumer(template: str, name: str, model_prefix: str) -> str:
    """template.yaml with one more consumer, written as the README says: CostConsumer's resource, renamed."""
    cost = re.search(r"^  CostConsumer:\n(?:    .*\n|\n)+?(?=^  \S|^  #)", template, re.MULTILINE)
    assert cost, "template.yaml has a CostConsumer resource"
    block = (
        cost[0]
        .replace("  CostConsumer:", f"  {name.capitalize()}Consumer:")
        .replace("ConsumerName: cost", f"ConsumerName: {name}")
    )
    block = re.sub(
        r"ModelUri: .*", f'ModelUri: !Sub "s3://${{ModelBucket}}/${{ModelPrefix}}/{model_prefix}/model"', block
    )
    block = re.sub(r"ModelVersion: .*", 'ModelVersion: ""', block)
    return template.replace(cost[0], cost[0] + block)


@pytest.fixture
def third_consumer(clients, stack, tmp_path, phase):
    """The session's stack with a tip consumer added to its template, then as it was."""
    from model_service.model.features import features_for_frame
    from model_service.model.training import build_pipeline, save_model
    from model_service.sample_data import make_trips

    trips = make_trips(2000, seed=5)
    pipeline = build_pipeline("linear").fit(features_for_frame(trips), (0.15 * trips["fare_amount"]).to_numpy())
    save_model(pipeline, tmp_path / "tip", target=TIP)
    local_aws.upload_model(clients, tmp_path / "tip", "ride-tip")
    template = with_consumer(local_aws.TEMPLATE.read_text(), "tip", "ride-tip")
    with phase("update the stack with a third consumer"):
        updated = local_aws.deploy(clients, stack.name, template_body=template, update=True)
    try:
        yield updated
    finally:
        with phase("update the stack back to template.yaml"):
            local_aws.deploy(clients, stack.name, update=True)
            local_aws.wait_until(
                lambda: f"{stack.name}-tip" not in functions(clients), 60, "the third consumer's function to go"
            )


def functions(clients) -> set[str]:
    pages = clients("lambda").get_paginator("list_functions").paginate()
    return {f["FunctionName"] for page in pages for f in page["Functions"]}


def test_a_third_consumer_added_without_code_changes_is_served_and_decided_no_rule(
    clients, localstack, stack, third_consumer, tag
):
    predictions = follow(clients, stack.predictions_stream)
    decisions = follow(clients, stack.decisions_stream)
    rides = [ride_payload(f"{tag}-{i}", distance=1 + i) for i in range(5)]
    put(localstack.endpoint, stack.input_stream, [json.dumps(r).encode() for r in rides])

    assert f"{stack.name}-tip" in functions(clients)
    tips = events_of(predictions, predictions_of(tag, TIP.event_model), len(rides), "tip predictions")
    tip_ids = {e["event_id"] for e in tips}
    decided = events_of(decisions, lambda d: d.get("prediction_event_id") in tip_ids, len(rides), "tip decisions")

    assert all(set(e["prediction"]) == {"ride_tip", "ride_id"} and e["event_id"].endswith("/tip") for e in tips)
    assert {d["decision"] for d in decided} == {"no_rule"}
    assert {d["ride_id"] for d in decided} == {r["ride_id"] for r in rides}
