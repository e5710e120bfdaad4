"""HTTP entry points through functions-framework, on the local backends and on
the Firestore emulator + fake-gcs-server."""


import pytest

from shared import wiring
from tests.conftest import register_model
from tests.integration.functions_client import client

DEMO_URLS = [(36, 120, 90), (38, 120, 90), (38.5, 140, 90), (36, 150, 180), (34.9, 59, 89)]
LABELS = {"NO ENFERMO", "ENFERMEDAD LEVE", "ENFERMEDAD AGUDA", "ENFERMEDAD CRÓNICA", "ENFERMEDAD TERMINAL"}


def demo_query(t, h, b):
    return f"/?temperature={t}&heart_rate={h}&blood_pressure={b}"


@pytest.fixture(params=["local", "emulators"])
def backend(request, trained_candidate):
    """Run each test on SQLite + folder, and on Firestore emulator + fake-gcs-server."""
    if request.param == "emulators":
        request.getfixturevalue("firestore_env")
        request.getfixturevalue("gcs_env")
    manifest = register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    return manifest


def test_demo_urls_by_get_and_post_are_answered_and_logged(backend):
    predict, history = client("predict"), client("predictions_history")
    ids = []
    for method in ("get", "post"):
        for t, h, b in DEMO_URLS:
            response = getattr(predict, method)(demo_query(t, h, b))
            assert response.status_code == 200, response.get_data(as_text=True)
            body = response.get_json()
            assert body["prediction"] in LABELS
            assert set(body["probabilities"]) == LABELS
            assert body["model_version"] == backend["version"]
            ids.append(body["prediction_id"])
    listed = history.get("/?limit=100").get_json()["predictions"]
    assert {item["prediction_id"] for item in listed} == set(ids)
    first = next(item for item in listed if item["prediction_id"] == ids[-1])
    assert first["inputs"] == {"temperature": 34.9, "heart_rate": 59.0, "blood_pressure": 89.0}
    assert first["created_at"].endswith("Z")


def test_a_fresh_client_reads_the_record_back(backend):
    response = client("predict").post("/", json={"temperature": 37.2, "heart_rate": 88, "blood_pressure": 130})
    prediction_id = response.get_json()["prediction_id"]
    wiring.reset()  # a new instance: new clients, nothing cached
    record = wiring.prediction_store().get_prediction(prediction_id)
    assert record.temperature == 37.2 and record.model_version == backend["version"]
    assert record.prediction == response.get_json()["prediction"]


def test_batch_answers_one_prediction_per_instance(backend):
    instances = [{"temperature": 36 + i / 10, "heart_rate": 80, "blood_pressure": 120} for i in range(20)]
    response = client("predict").post("/", json={"instances": instances})
    body = response.get_json()
    assert response.status_code == 200 and len(body["predictions"]) == 20
    assert wiring.prediction_store().count() == 20


def test_history_pages_with_cursor(backend):
    predict = client("predict")
    for _ in range(5):
        assert predict.get(demo_query(36, 80, 120)).status_code == 200
    history = client("predictions_history")
    first = history.get("/?limit=2").get_json()
    second = history.get(f"/?limit=2&cursor={first['next_cursor']}").get_json()
    third = history.get(f"/?limit=2&cursor={second['next_cursor']}").get_json()
    ids = [i["prediction_id"] for page in (first, second, third) for i in page["predictions"]]
    assert len(ids) == len(set(ids)) == 5 and third["next_cursor"] is None


def test_model_metadata(backend):
    body = client("model_metadata").get("/").get_json()
    assert body["version"] == backend["version"]
    assert [f["name"] for f in body["features"]] == ["temperature", "heart_rate", "blood_pressure"]
    assert body["features"][0]["min"] == 25.0 and body["metrics"]["macro_f1"] > 0.5


@pytest.mark.parametrize("method, path, kwargs, status, field", [
    ("get", "/?temperature=abc&heart_rate=80&blood_pressure=120", {}, 400, "temperature"),
    ("get", "/?temperature=nan&heart_rate=80&blood_pressure=120", {}, 400, "temperature"),
    ("get", "/?temperature=36&heart_rate=900&blood_pressure=120", {}, 400, "heart_rate"),
    ("get", "/?temperature=36&heart_rate=80", {}, 400, "blood_pressure"),
    ("post", "/", {"data": "{bad", "content_type": "application/json"}, 400, "body"),
    ("post", "/", {"data": "temperature=36", "content_type": "text/plain"}, 415, "content-type"),
    ("put", "/", {}, 405, "method"),
    ("post", "/", {"json": {"instances": [{"temperature": 36, "heart_rate": 80, "blood_pressure": 120}] * 1001}},
     413, "instances"),
    ("post", "/", {"data": "x" * 300_000, "content_type": "application/json"}, 413, "body"),
])
def test_bad_input_is_a_4xx_naming_the_field_and_logs_nothing(backend, method, path, kwargs, status, field):
    response = getattr(client("predict"), method)(path, **kwargs)
    assert response.status_code == status
    assert response.get_json()["error"]["field"] == field
    assert wiring.prediction_store().count() == 0


def test_no_model_is_503_with_json(tmp_path):
    response = client("predict").get(demo_query(36, 80, 120))
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "model_unavailable"


def test_history_rejects_bad_limit_and_cursor():
    history = client("predictions_history")
    assert history.get("/?limit=501").get_json()["error"]["field"] == "limit"
    assert history.get("/?cursor=%%%").status_code == 400
    assert history.post("/").status_code == 405


def test_after_its_first_model_the_serving_process_keeps_its_objects_out_of_full_collections(trained_candidate):
    import gc

    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    gc.unfreeze()
    response = client("predict").get(demo_query(36, 120, 90))
    assert response.status_code == 200
    assert gc.get_freeze_count() > 10_000  # the libraries and the model: a full collection skips them


def test_predict_reads_its_settings_once_a_request(trained_candidate, monkeypatch):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    predict = client("predict")
    reads = []
    read_settings = wiring.settings
    monkeypatch.setattr(wiring, "settings", lambda function=None: reads.append(function) or read_settings(function))
    response = predict.get(demo_query(36, 120, 90))
    assert response.status_code == 200
    assert reads == ["predict"]  # each read parses a dozen variables: the trace, body limit and handler share one


def test_predict_answers_a_bad_setting_read_at_request_time_as_json_naming_it(trained_candidate, monkeypatch):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    predict = client("predict")
    monkeypatch.setenv("MAX_BATCH_SIZE", "many")
    response = predict.get(demo_query(36, 120, 90))
    assert response.status_code == 500
    assert response.get_json()["error"]["field"] == "MAX_BATCH_SIZE"
    assert predict.options("/").status_code == 204  # OPTIONS is answered without the settings
    monkeypatch.delenv("MAX_BATCH_SIZE")
    assert predict.get(demo_query(36, 120, 90)).status_code == 200
