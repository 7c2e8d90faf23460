"""The web adapter through Flask's test client: what each request gets back."""

from __future__ import annotations

import base64
import io
import json

import pytest

from model_service.config import Settings
from model_service.errors import InvalidSetting, RejectedRecord
from model_service.kinesis.decode import decode_ride_event
from model_service.schema import validate_ride
from model_service.service import PredictionService, RideModels
from model_service.web import app_from_env, create_app
from tests.conftest import shared_path
from tests.factories import answering_nan_beyond

RIDE = {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}
OTHER_RIDE = {"PULocationID": 10, "DOLocationID": 50, "trip_distance": 40}
MAX_BODY = 2048


@pytest.fixture
def client(service):
    app = create_app(RideModels([service]), Settings(web_max_body_bytes=MAX_BODY))
    return app.test_client()


@pytest.fixture
def default_client(service):
    """With the default limits, for bodies as large as the defaults let through."""
    return create_app(RideModels([service]), Settings()).test_client()


def expected(service: PredictionService, *rides: dict) -> list[float]:
    return service.predict([validate_ride(r) for r in rides])


def test_a_ride_gets_its_duration_in_minutes_and_the_model_version(client, service):
    response = client.post("/predict", json=RIDE)

    assert response.status_code == 200
    assert response.get_json() == {
        "duration": pytest.approx(expected(service, RIDE)[0]),
        "model_versions": {"duration": service.version},
    }


def test_a_ride_with_a_ride_id_gets_it_back(client):
    response = client.post("/predict", json={**RIDE, "ride_id": "abc-1"})

    assert response.get_json()["ride_id"] == "abc-1"


def test_the_course_event_shape_is_accepted(client, service):
    response = client.post("/predict", json={"ride": RIDE, "ride_id": 256})

    assert response.status_code == 200
    assert response.get_json()["ride_id"] == 256
    assert response.get_json()["duration"] == pytest.approx(expected(service, RIDE)[0])


def test_an_integer_trip_distance_is_accepted_as_the_course_test_sends_it(client):
    response = client.post("/predict", json=OTHER_RIDE)

    assert response.status_code == 200


def test_a_list_of_rides_gets_one_prediction_per_ride_in_order(client, service):
    response = client.post("/predict", json=[RIDE, {**OTHER_RIDE, "ride_id": 7}, {"ride": RIDE, "ride_id": "x"}])

    assert response.status_code == 200
    body = response.get_json()
    a, b, c = expected(service, RIDE, OTHER_RIDE, RIDE)
    assert body == {
        "predictions": [
            {"duration": pytest.approx(a)},
            {"duration": pytest.approx(b), "ride_id": 7},
            {"duration": pytest.approx(c), "ride_id": "x"},
        ],
        "model_versions": {"duration": service.version},
    }


def test_a_list_of_rides_is_predicted_in_one_call(client, service, monkeypatch):
    calls = []
    original = service.predict_columns
    monkeypatch.setattr(
        service, "predict_columns", lambda *columns: calls.append(len(columns[0])) or original(*columns)
    )

    client.post("/predict", json=[RIDE] * 5)

    assert calls == [5]


def test_an_empty_list_gets_no_predictions(client, service):
    response = client.post("/predict", json=[])

    assert response.status_code == 200
    assert response.get_json() == {"predictions": [], "model_versions": {"duration": service.version}}


def test_an_out_of_range_field_is_400_naming_the_field_and_the_reason(client):
    response = client.post("/predict", json={**RIDE, "PULocationID": 999})

    assert response.status_code == 400
    body = response.get_json()
    assert body["errors"] == [
        {"field": "PULocationID", "reason": "Input should be less than or equal to 265 (got 999)"}
    ]
    assert "PULocationID" in body["error"]


def test_a_missing_field_is_400_naming_it(client):
    response = client.post("/predict", json={"PULocationID": 130, "DOLocationID": 205})

    assert response.status_code == 400
    assert response.get_json()["errors"] == [{"field": "trip_distance", "reason": "Field required"}]


def test_a_bad_field_in_the_course_event_shape_is_named_by_its_path(client):
    response = client.post("/predict", json={"ride": {**RIDE, "trip_distance": "far"}, "ride_id": 1})

    assert response.status_code == 400
    assert [e["field"] for e in response.get_json()["errors"]] == ["ride.trip_distance"]


def test_an_invalid_ride_id_is_400_naming_it(client):
    response = client.post("/predict", json={**RIDE, "ride_id": [1]})

    assert response.status_code == 400
    assert [e["field"] for e in response.get_json()["errors"]] == ["ride_id"]


def test_a_list_with_bad_rides_is_400_naming_each_index_and_field_and_predicts_nothing(client, service, monkeypatch):
    monkeypatch.setattr(service, "predict_columns", lambda *columns: pytest.fail("nothing should be predicted"))

    response = client.post("/predict", json=[RIDE, {**RIDE, "trip_distance": -1}, RIDE, {**RIDE, "DOLocationID": 0}])

    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "trip_distance"), (3, "DOLocationID")]
    assert all(e["reason"] for e in errors)


def test_a_body_that_is_not_json_is_400(client):
    response = client.post("/predict", data=b"{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["error"].startswith("body is not valid JSON")


@pytest.mark.parametrize("body", [42, "ride", None, True])
def test_json_that_is_neither_a_ride_nor_a_list_is_400(client, body):
    response = client.post("/predict", data=json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["error"] == f"body must be a ride object or a list of rides, not {json.dumps(body)}"


def test_a_non_ascii_string_body_is_400_quoting_its_start(client):
    response = client.post("/predict", json="é" * 100)

    assert response.status_code == 400
    assert response.get_json()["error"] == f'body must be a ride object or a list of rides, not "{"é" * 39}'


def test_a_list_item_that_is_not_an_object_is_400_naming_its_index(client):
    response = client.post("/predict", json=[RIDE, 5])

    assert response.status_code == 400
    assert [e["index"] for e in response.get_json()["errors"]] == [1]


def test_a_non_json_content_type_is_415(client):
    response = client.post("/predict", data=json.dumps(RIDE), content_type="text/plain")

    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]


def test_a_json_content_type_with_a_charset_is_accepted(client):
    response = client.post("/predict", data=json.dumps(RIDE), content_type="application/json; charset=utf-8")

    assert response.status_code == 200


def test_a_body_over_the_configured_size_is_413(client):
    response = client.post("/predict", json=[RIDE] * 100)

    assert response.status_code == 413
    assert response.get_json() == {"error": f"body larger than {MAX_BODY} bytes"}


def test_an_unexpected_error_is_a_json_500_without_a_traceback(client, service, monkeypatch):
    def broken(*columns):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "predict_columns", broken)

    response = client.post("/predict", json=RIDE)

    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error"}


def test_an_unexpected_error_goes_to_the_log_with_its_traceback(client, service, monkeypatch, caplog):
    def broken(*columns):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "predict_columns", broken)

    client.post("/predict", json=RIDE)

    (record,) = [r for r in caplog.records if r.name == "model_service.web"]
    assert record.getMessage() == "unexpected error serving POST /predict"
    assert record.exc_info is not None
    assert "secret internals" in str(record.exc_info[1])


def test_get_on_predict_is_a_json_405(client):
    response = client.get("/predict")

    assert response.status_code == 405
    assert response.headers["Allow"]
    assert "error" in response.get_json()


def test_an_unknown_path_is_a_json_404(client):
    response = client.get("/nope")

    assert response.status_code == 404
    assert "error" in response.get_json()


def test_health_reports_the_model_version_but_not_where_the_model_is_stored(client, service, mlflow_model_dir):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "model_loaded": True,
        "model_versions": {"duration": service.version},
    }
    assert str(mlflow_model_dir.parent) not in response.get_data(as_text=True)


def test_the_app_loads_the_models_named_by_model_uris_with_their_versions(
    mlflow_model_dir, cost_model_dir, monkeypatch
):
    monkeypatch.setenv("MODEL_URIS", f"{mlflow_model_dir}, {cost_model_dir}")
    monkeypatch.setenv("MODEL_VERSIONS", "v-duration,")

    response = app_from_env().test_client().get("/health")

    cost_version = PredictionService.load(str(cost_model_dir)).version
    assert response.get_json()["model_versions"] == {"duration": "v-duration", "cost": cost_version}


def test_each_ride_gets_every_models_prediction_under_its_target(service, cost_model_dir):
    cost = PredictionService.load(str(cost_model_dir))
    client = create_app(RideModels([service, cost]), Settings()).test_client()

    one = client.post("/predict", json={**RIDE, "ride_id": 256}).get_json()
    many = client.post("/predict", json=[RIDE, OTHER_RIDE]).get_json()

    versions = {"duration": service.version, "cost": cost.version}
    assert one == {
        "duration": pytest.approx(expected(service, RIDE)[0]),
        "cost": pytest.approx(expected(cost, RIDE)[0]),
        "ride_id": 256,
        "model_versions": versions,
    }
    assert many == {
        "predictions": [
            {"duration": pytest.approx(d), "cost": pytest.approx(c)}
            for d, c in zip(expected(service, RIDE, OTHER_RIDE), expected(cost, RIDE, OTHER_RIDE), strict=True)
        ],
        "model_versions": versions,
    }


def test_two_models_of_one_target_are_refused_at_start_up(mlflow_model_dir, monkeypatch):
    monkeypatch.setenv("MODEL_URIS", f"{mlflow_model_dir},{mlflow_model_dir}")
    with pytest.raises(InvalidSetting, match="one model per target"):
        app_from_env()


@pytest.mark.shared_data
def test_the_course_model_predicts_the_course_figure():
    service = PredictionService.load(str(shared_path("models/lin_reg.bin")), allow_pickle=True)
    client = create_app(RideModels([service]), Settings()).test_client()

    response = client.post("/predict", json=RIDE)

    assert response.get_json()["duration"] == pytest.approx(12.7855, abs=1e-4)


def test_the_body_limit_comes_from_web_max_body_bytes(service, monkeypatch):
    monkeypatch.setenv("WEB_MAX_BODY_BYTES", "100")
    client = create_app(RideModels([service]), Settings.from_env()).test_client()

    assert client.post("/predict", json=RIDE).status_code == 200
    assert client.post("/predict", json=[RIDE] * 2).status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[" * 100_000, id="a-hundred-thousand-open-brackets"),
        pytest.param(
            json.dumps(RIDE)[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}", id="nested-extra-field"
        ),
    ],
)
def test_deeply_nested_json_is_a_400_not_a_500(default_client, body):
    response = default_client.post("/predict", data=body, content_type="application/json")

    assert response.status_code == 400
    assert "recursion limit" in response.get_json()["error"]


def test_a_list_longer_than_web_max_rides_is_413_naming_the_cap(service, monkeypatch):
    client = create_app(RideModels([service]), Settings(web_max_rides=5)).test_client()
    monkeypatch.setattr(service, "predict_columns", lambda *columns: pytest.fail("nothing should be predicted"))

    response = client.post("/predict", json=[RIDE] * 6)

    assert response.status_code == 413
    assert response.get_json() == {"error": "at most 5 rides per request, got 6"}


def test_a_list_of_exactly_web_max_rides_is_predicted(service):
    client = create_app(RideModels([service]), Settings(web_max_rides=5)).test_client()

    response = client.post("/predict", json=[RIDE] * 5)

    assert response.status_code == 200
    assert len(response.get_json()["predictions"]) == 5


def test_a_megabyte_of_empty_objects_gets_a_short_answer(default_client):
    body = "[" + ",".join(["{}"] * 300_000) + "]"

    response = default_client.post("/predict", data=body, content_type="application/json")

    assert response.status_code == 413
    assert len(response.get_data()) < 100


def test_a_400_lists_the_first_errors_once_and_counts_them_all(service):
    client = create_app(RideModels([service]), Settings(web_max_reported_errors=4)).test_client()
    rides = [RIDE, *({**RIDE, "trip_distance": -i} for i in range(1, 51)), {}]

    response = client.post("/predict", json=rides)

    assert response.status_code == 400
    body = response.get_json()
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(i, "trip_distance") for i in range(1, 5)]
    assert body["error_count"] == 50 + 3
    assert body["error"] == (
        "invalid rides: 51 of 52 rides, 53 errors; "
        "the first: [1].trip_distance: Input should be greater than or equal to 0 (got -1)"
    )


def test_the_error_caps_bound_the_answer_to_the_largest_bad_list(default_client):
    rides = [{**RIDE, "PULocationID": "x", "ride_id": ""}] * Settings().web_max_rides

    response = default_client.post("/predict", json=rides)

    assert response.status_code == 400
    assert response.get_json()["error_count"] == 2 * len(rides)
    assert len(response.get_data()) < 4096


def test_a_long_bad_value_is_quoted_only_in_part(default_client):
    response = default_client.post("/predict", json={**RIDE, "trip_distance": "far" * 100_000})

    assert response.status_code == 400
    assert response.get_json()["errors"][0]["reason"].startswith("Input should be a valid number (got 'farfar")
    assert len(response.get_data()) < 1024


NOT_ON_KINESIS = [
    pytest.param(
        b'{"ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": 1}, "ride_id": "\\ud800"}',
        id="lone-surrogate-ride-id",
    ),
    pytest.param(json.dumps({"ride": RIDE, "ride_id": 1}).encode("utf-16"), id="utf-16"),
    pytest.param(
        json.dumps({"ride": RIDE, "ride_id": "caf\u00e9"}, ensure_ascii=False).encode("latin-1"), id="latin-1"
    ),
]


@pytest.mark.parametrize("payload", NOT_ON_KINESIS)
def test_a_body_the_kinesis_path_rejects_is_a_400(client, payload):
    with pytest.raises(RejectedRecord):
        decode_ride_event(base64.b64encode(payload).decode())

    response = client.post("/predict", data=payload, content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["error"].startswith(("body is not valid JSON", "body is not UTF-8 text"))


def test_the_ride_and_error_caps_come_from_the_environment(service, monkeypatch):
    monkeypatch.setenv("WEB_MAX_RIDES", "3")
    monkeypatch.setenv("WEB_MAX_REPORTED_ERRORS", "1")
    client = create_app(RideModels([service]), Settings.from_env()).test_client()

    assert client.post("/predict", json=[RIDE] * 4).status_code == 413
    assert len(client.post("/predict", json=[{}] * 3).get_json()["errors"]) == 1


class StalledBody(io.RawIOBase):
    """A request body that sends nothing after the headers: its socket's read times out, as gunicorn's does."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise TimeoutError("timed out")


def post_promising_100_bytes(client, body: io.RawIOBase, input_terminated: bool):
    """POST whose Content-Length promises 100 bytes that ``body`` does not deliver.

    gunicorn ends a request's input stream itself (``wsgi.input_terminated``),
    and werkzeug then reads it as it is; without that key, werkzeug limits the
    stream to the Content-Length itself, as it does under other servers.
    """
    environ = {"wsgi.input": body, "CONTENT_LENGTH": "100"}
    if input_terminated:
        environ["wsgi.input_terminated"] = True
    return client.post("/predict", content_type="application/json", environ_overrides=environ)


TERMINATED = pytest.mark.parametrize("input_terminated", [True, False], ids=["as gunicorn serves it", "otherwise"])


@TERMINATED
def test_a_body_that_stops_arriving_is_a_400_not_a_500(client, input_terminated):
    response = post_promising_100_bytes(client, StalledBody(), input_terminated)

    assert response.status_code == 400
    assert response.get_json() == {"error": "the request body was not received in full"}


@TERMINATED
def test_a_body_cut_short_by_a_client_that_left_is_a_400(client, input_terminated):
    response = post_promising_100_bytes(client, io.BytesIO(b'{"PULocationID": 1'), input_terminated)

    assert response.status_code == 400
    assert response.get_json() == {"error": "the request body was not received in full"}


def test_a_model_answering_nan_gets_a_json_500_naming_the_model_and_the_ride_not_a_number(service, caplog):
    client = create_app(RideModels([answering_nan_beyond(service, miles=100)]), Settings()).test_client()

    response = client.post("/predict", json=[RIDE, {**OTHER_RIDE, "trip_distance": 300}])

    assert response.status_code == 500
    assert response.get_json() == {
        "error": "the duration model predicted nan for ride 1, which is not a number to answer with"
    }
    assert "refused to answer: the duration model predicted nan for ride 1" in caplog.text
