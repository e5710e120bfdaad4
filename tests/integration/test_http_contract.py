"""The strict HTTP contract through functions-framework, on the local backends
and on the Firestore emulator + fake-gcs-server: refusals are 4xx JSON naming
the field, whatever the input and the backend."""

import base64
import gzip
import json

import pytest

from shared import wiring
from tests.conftest import register_model
from tests.integration.functions_client import client

VITALS = {"temperature": 36.6, "heart_rate": 80, "blood_pressure": 120}
QUERY = "/?temperature=36.6&heart_rate=80&blood_pressure=120"
ALLOW = {"predict": "GET, HEAD, POST, OPTIONS", "predictions_history": "GET, HEAD, OPTIONS",
         "model_metadata": "GET, HEAD, OPTIONS", "record_outcome": "POST, OPTIONS"}


@pytest.fixture(params=["local", "emulators"])
def backend(request, trained_candidate):
    if request.param == "emulators":
        request.getfixturevalue("firestore_env")
        request.getfixturevalue("gcs_env")
    return register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())


def error_of(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    return response.get_json()["error"]


@pytest.mark.parametrize("prediction_id", ["a/b", ".", "..", "__x__", "x" * 5000])
def test_an_id_that_cannot_exist_is_400_on_both_backends(backend, prediction_id):
    response = client("record_outcome").post("/", json={"prediction_id": prediction_id, "label": "NO ENFERMO"})
    assert error_of(response, 400)["code"] == "invalid_id"


@pytest.mark.parametrize("document", [{"t": 99999999999999999999999, "id": "x"}, {"t": 1, "id": "a/b"}])
def test_a_hand_made_cursor_is_400_on_both_backends(backend, document):
    cursor = base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")
    assert error_of(client("predictions_history").get(f"/?cursor={cursor}"), 400)["field"] == "cursor"


def test_an_outcome_answers_in_label_order_and_z_times_on_both_backends(backend):
    answered = client("predict").get(QUERY).get_json()
    outcome = client("record_outcome").post("/", json={"prediction_id": answered["prediction_id"],
                                                       "label": "ENFERMEDAD AGUDA"}).get_json()
    assert list(outcome["probabilities"]) == list(answered["probabilities"])
    assert outcome["created_at"].endswith("Z") and outcome["outcome"]["updated_at"].endswith("Z")
    assert client("model_metadata").get("/").get_json()["created_at"].endswith("Z")


@pytest.mark.parametrize("target", sorted(ALLOW))
def test_options_lists_the_methods(backend, target):
    response = client(target).options("/")
    assert response.status_code == 204 and response.headers["Allow"] == ALLOW[target]


@pytest.mark.parametrize("target, path", [("predictions_history", "/"), ("model_metadata", "/")])
def test_head_answers_as_get_without_a_body(backend, target, path):
    got, head = client(target).get(path), client(target).head(path)
    assert head.status_code == got.status_code == 200
    assert head.mimetype == "application/json" and head.get_data() == b""


def test_head_on_predict_validates_but_predicts_and_logs_nothing(backend):
    predict = client("predict")
    assert predict.head(QUERY).status_code == 200
    assert predict.head("/?temperature=abc&heart_rate=80&blood_pressure=120").status_code == 400
    assert wiring.prediction_store().count() == 0


@pytest.mark.parametrize("target, method", [("predict", "GET"), ("predict", "PUT"), ("predictions_history", "GET"),
                                            ("model_metadata", "DELETE"), ("record_outcome", "PATCH")])
def test_the_body_limit_holds_on_every_method(backend, target, method):
    response = client(target).open("/", method=method, data=b"x" * 300_000, content_type="application/json")
    assert error_of(response, 413)["field"] == "body"


def test_a_compressed_body_is_refused_not_ignored(backend):
    response = client("predict").post("/", data=gzip.compress(json.dumps(VITALS).encode()),
                                      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert error_of(response, 415)["field"] == "content-encoding"


@pytest.mark.parametrize("body, field, code", [
    (b'{"temperature": 36, "temperature": 37, "heart_rate": 80, "blood_pressure": 120}', "temperature",
     "duplicate_field"),
    (json.dumps({"instances": [VITALS], "model": "v2"}).encode(), "model", "unknown_field"),
    (b'{"temperature": "\xd9\xa3\xd9\xa6", "heart_rate": 80, "blood_pressure": 120}', "temperature", "not_a_number"),
])
def test_strict_json_through_the_function(backend, body, field, code):
    error = error_of(client("predict").post("/", data=body, content_type="application/json"), 400)
    assert (error["field"], error["code"]) == (field, code)
    assert wiring.prediction_store().count() == 0


def test_an_outcome_is_attributed_to_the_token_and_a_malformed_token_is_400_on_both_backends(backend):
    from tests.unit.test_caller import token

    answered = client("predict").get(QUERY).get_json()
    body = {"prediction_id": answered["prediction_id"], "label": "ENFERMEDAD AGUDA"}
    first = client("record_outcome").post("/", json=body, headers={
        "Authorization": "Bearer " + token({"email": "clinician@clinic.example"})}).get_json()
    assert first["outcome"]["caller"] == "clinician@clinic.example"
    refused = client("record_outcome").post("/", json=dict(body, label="NO ENFERMO"),
                                            headers={"X-Serverless-Authorization": "Bearer not-a-token"})
    assert error_of(refused, 400)["field"] == "x-serverless-authorization"
    second = client("record_outcome").post("/", json=dict(body, label="NO ENFERMO")).get_json()
    assert second["outcome"]["caller"] == "anonymous"
    assert second["outcome"]["history"] == [{"label": "ENFERMEDAD AGUDA", "caller": "clinician@clinic.example",
                                             "at": first["outcome"]["updated_at"]}]


def test_a_caller_past_its_hourly_limit_is_429_and_others_are_not_on_both_backends(backend, monkeypatch):
    from tests.unit.test_caller import token

    monkeypatch.setenv("OUTCOMES_PER_CALLER_PER_HOUR", "3")
    answered = client("predict").get(QUERY).get_json()
    body = {"prediction_id": answered["prediction_id"], "label": "NO ENFERMO"}
    flood = {"Authorization": "Bearer " + token({"email": "flood@example.com"})}
    statuses = [client("record_outcome").post("/", json=body, headers=flood).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert error_of(client("record_outcome").post("/", json=body, headers=flood), 429)["field"] == "authorization"
    assert client("record_outcome").post("/", json=body).status_code == 200  # anonymous has its own count
