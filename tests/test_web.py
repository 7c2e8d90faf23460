"""The web adapter through Flask's test client: what each request gets back."""

from __future__ import annotations

import json

import pytest

from model_service.config import Settings
from model_service.schema import validate_ride
from model_service.service import PredictionService
from model_service.web import create_app
from tests.conftest import shared_path

RIDE = {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}
OTHER_RIDE = {"PULocationID": 10, "DOLocationID": 50, "trip_distance": 40}
MAX_BODY = 2048


@pytest.fixture(scope="module")
def service(model_bin) -> PredictionService:
    return PredictionService.load(str(model_bin))


@pytest.fixture
def client(service):
    app = create_app(service, Settings(web_max_body_bytes=MAX_BODY))
    return app.test_client()


def expected(service: PredictionService, *rides: dict) -> list[float]:
    return service.predict([validate_ride(r) for r in rides])


def test_a_ride_gets_its_duration_in_minutes_and_the_model_version(client, service):
    response = client.post("/predict", json=RIDE)

    assert response.status_code == 200
    assert response.get_json() == {
        "duration": pytest.approx(expected(service, RIDE)[0]),
        "model_version": service.version,
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
        "model_version": service.version,
    }


def test_a_list_of_rides_is_predicted_in_one_call(client, service, monkeypatch):
    calls = []
    original = service.predict
    monkeypatch.setattr(service, "predict", lambda rides: calls.append(len(rides)) or original(rides))

    client.post("/predict", json=[RIDE] * 5)

    assert calls == [5]


def test_an_empty_list_gets_no_predictions(client, service):
    response = client.post("/predict", json=[])

    assert response.status_code == 200
    assert response.get_json() == {"predictions": [], "model_version": service.version}


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
    monkeypatch.setattr(service, "predict", lambda rides: pytest.fail("nothing should be predicted"))

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
    def broken(rides):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "predict", broken)

    response = client.post("/predict", json=RIDE)

    assert response.status_code == 500
    assert response.get_json() == {"error": "internal server error"}


def test_get_on_predict_is_a_json_405(client):
    response = client.get("/predict")

    assert response.status_code == 405
    assert response.headers["Allow"]
    assert "error" in response.get_json()


def test_an_unknown_path_is_a_json_404(client):
    response = client.get("/nope")

    assert response.status_code == 404
    assert "error" in response.get_json()


def test_health_reports_the_loaded_model_version_and_uri(client, service, model_bin):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "model_loaded": True,
        "model_version": service.version,
        "model_uri": str(model_bin),
    }


def test_the_app_loads_the_model_named_by_model_uri(model_bin, monkeypatch):
    monkeypatch.setenv("MODEL_URI", str(model_bin))
    monkeypatch.setenv("MODEL_VERSION", "v-test")

    response = create_app().test_client().get("/health")

    assert response.get_json()["model_version"] == "v-test"


@pytest.mark.shared_data
def test_the_course_model_predicts_the_course_figure():
    service = PredictionService.load(str(shared_path("models/lin_reg.bin")))
    client = create_app(service, Settings()).test_client()

    response = client.post("/predict", json=RIDE)

    assert response.get_json()["duration"] == pytest.approx(12.7855, abs=1e-4)


def test_the_body_limit_comes_from_web_max_body_bytes(service, monkeypatch):
    monkeypatch.setenv("WEB_MAX_BODY_BYTES", "100")
    client = create_app(service).test_client()

    assert client.post("/predict", json=RIDE).status_code == 200
    assert client.post("/predict", json=[RIDE] * 2).status_code == 413
