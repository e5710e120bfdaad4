"""`make run`'s server end to end: the original demo's five URLs, by GET and
POST, answered and then listed by /predictions-history; Ctrl-C stops it
cleanly, workers included."""

import http.client
import json
import os
import signal
import socket

import pytest

from tests.e2e.server import LocalServer

DEMO = [(36, 120, 90), (38, 120, 90), (38.5, 140, 90), (36, 150, 180), (34.9, 59, 89)]
LABELS = {"NO ENFERMO", "ENFERMEDAD LEVE", "ENFERMEDAD AGUDA", "ENFERMEDAD CRÓNICA", "ENFERMEDAD TERMINAL"}


@pytest.fixture
def server(tmp_path):
    running = LocalServer({"LOCAL_DATA_DIR": str(tmp_path / "data"), "TRAINING_ROWS": "4000"}).start()
    yield running
    running.stop()


def test_demo_urls_are_answered_and_listed_then_ctrl_c_stops_the_server(server):
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

    # Ctrl-C, as a person stops `make run`
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=15) == 0  # a clean exit, not a kill
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)  # no worker of its process group outlived it
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def raw_request(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) over a plain connection: no client-side limits or redirects."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()  # header names: any case
    finally:
        connection.close()


def test_every_refusal_is_json_whoever_answers(server):
    import json

    cases = [
        ("GET", "/predict?temperature=" + "1" * 5000, 414),  # the server's limit on the URL
        ("GET", "/drift_check", 405),  # functions-framework's event app
        ("POST", "/retrain", 415),  # not a CloudEvent (no content type)
        ("POST", "/", 405),
        ("GET", "/nothing-here", 404),
    ]
    for method, path, status in cases:
        answered, headers, body = raw_request(server, method, path, body=b"{}" if method == "POST" else None)
        assert answered == status, (method, path, body[:200])
        assert headers["Content-Type"].startswith("application/json"), (method, path, headers)
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message", "field"} and error["message"]


def test_head_and_options_are_answered_where_get_works(server):
    for path in ("/predictions-history", "/model", "/", "/predict?temperature=36&heart_rate=80&blood_pressure=120"):
        status, headers, body = raw_request(server, "HEAD", path)
        assert status == 200 and body == b"" and headers["Content-Type"].startswith("application/json"), path
    status, headers, _ = raw_request(server, "OPTIONS", "/predict")
    assert status == 204 and headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    status, history = server.request("/predictions-history")
    assert status == 200 and history["predictions"] == []  # HEAD /predict predicted and logged nothing


def test_a_bad_configuration_value_refuses_the_start_naming_the_variable(tmp_path):
    refused = LocalServer({"LOCAL_DATA_DIR": str(tmp_path / "data"), "MAX_BATCH_SIZE": "abc"})
    with pytest.raises(RuntimeError) as caught:
        refused.start(bootstrap=False, timeout=60)
    assert "MAX_BATCH_SIZE" in str(caught.value)
    assert refused.process.returncode not in (None, 0)


def test_concurrent_predictions_each_have_one_record_and_a_chunked_oversized_body_is_refused(server):
    """Two workers, 64 requests at once: they share commits (group commit),
    yet every answered prediction is listed exactly once. Then a body sent
    chunked, with no length, is cut at the limit with a JSON 413."""
    from concurrent.futures import ThreadPoolExecutor

    def predict(index):
        status, body = server.request(f"/predict?temperature={35 + index % 5}&heart_rate={60 + index}"
                                      f"&blood_pressure=120")
        assert status == 200
        return body["prediction_id"]

    with ThreadPoolExecutor(16) as pool:
        answered = list(pool.map(predict, range(64)))
    status, history = server.request("/predictions-history?limit=100")
    assert status == 200
    assert sorted(item["prediction_id"] for item in history["predictions"]) == sorted(answered)

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    instance = b'{"temperature": 36.6, "heart_rate": 80, "blood_pressure": 120},'
    chunks = [b'{"instances": ['] + [instance * 100] * 50 + [b"{}]}"]
    try:
        connection.request("POST", "/predict", body=iter(chunks), headers={"Content-Type": "application/json"},
                           encode_chunked=True)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the body ended, as it should: read its answer
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["field"] == "body"
    status, history = server.request("/predictions-history?limit=100")
    assert len(history["predictions"]) == len(answered)
