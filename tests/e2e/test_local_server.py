"""`make run`'s server end to end: the original demo's five URLs, by GET and
POST, answered and then listed by /predictions-history."""

import pytest

from tests.e2e.server import LocalServer

DEMO = [(36, 120, 90), (38, 120, 90), (38.5, 140, 90), (36, 150, 180), (34.9, 59, 89)]
LABELS = {"NO ENFERMO", "ENFERMEDAD LEVE", "ENFERMEDAD AGUDA", "ENFERMEDAD CRÓNICA", "ENFERMEDAD TERMINAL"}


@pytest.fixture
def server(tmp_path):
    running = LocalServer({"LOCAL_DATA_DIR": str(tmp_path / "data"), "TRAINING_ROWS": "4000"}).start()
    yield running
    running.stop()
    assert running.process.returncode is not None


def test_demo_urls_are_answered_and_listed(server):
    answered = []
    for method in ("GET", "POST"):
        for t, h, b in DEMO:
            status, body = server.request(f"/predict?temperature={t}&heart_rate={h}&blood_pressure={b}", method)
            assert status == 200 and body["prediction"] in LABELS
            answered.append(body["prediction_id"])
    status, history = server.request("/predictions-history?limit=10")
    assert status == 200
    assert [item["prediction_id"] for item in history["predictions"]] == answered[::-1]
    status, model = server.request("/model")
    assert status == 200 and model["version"] == history["predictions"][0]["model_version"]
    status, error = server.request("/predict?temperature=36&heart_rate=abc&blood_pressure=90")
    assert status == 400 and error["error"]["field"] == "heart_rate"
    status, missing = server.request("/nothing-here")
    assert status == 404
