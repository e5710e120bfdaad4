"""What is stored and logged is the model's features, outputs and metadata
only; log lines are structured JSON; size limits apply before parsing."""

import io
import json
import logging

import pytest

from shared import wiring
from shared.stores.metadata.port import DRIFT_REPORTS
from shared.structured_logging import JsonFormatter
from tests.conftest import register_model
from tests.integration.events import post_event, pubsub_cloud_event
from tests.integration.functions_client import client

SECRETS = ["Juan Pérez", "12345678Z", "juan@example.org", "+34 600 000 000", "Calle Mayor 1"]
RECORD_FIELDS = {"created_at", "expire_at", "temperature", "heart_rate", "blood_pressure", "prediction",
                 "probabilities", "model_version", "outcome_label", "outcome_recorded_at", "outcome_updated_at"}


@pytest.fixture
def captured_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("mlops")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


def send_requests_with_identifiers():
    """Identifiers beside the vitals are refused by name (never echoed); the
    vitals alone are answered and stored without them or the client's address."""
    predict = client("predict")
    vitals_query = "/?temperature=36.6&heart_rate=80&blood_pressure=120"
    refused = predict.get(vitals_query + "&name=Juan%20P%C3%A9rez&dni=12345678Z&email=juan@example.org")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "unknown_field"
    assert predict.get(vitals_query, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200
    body = {"temperature": 38.9, "heart_rate": 130, "blood_pressure": 110}
    identified = dict(body, name=SECRETS[0], dni=SECRETS[1], phone=SECRETS[3], address=SECRETS[4])
    for refused in (predict.post("/", json=identified), predict.post("/", json={"instances": [identified] * 3})):
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "unknown_field"
        assert not any(secret in refused.get_data(as_text=True) for secret in SECRETS)
    assert predict.post("/", json=body).status_code == 200
    assert predict.post("/", json={"instances": [body] * 3}).status_code == 200
    assert predict.post("/", json=dict(body, temperature="hot")).status_code == 400
    assert predict.post("/", data=json.dumps(body)[:-3], content_type="application/json").status_code == 400


@pytest.mark.emulator
def test_stored_records_hold_features_outputs_and_metadata_only(firestore_env, trained_candidate, captured_logs):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    send_requests_with_identifiers()
    from google.cloud import firestore

    documents = [s.to_dict() for s in firestore.Client(project=wiring.settings().google_cloud_project)
                 .collection("predictions").stream()]
    assert len(documents) == 5
    for document in documents:
        assert set(document) <= RECORD_FIELDS
    dump = json.dumps(documents, default=str) + captured_logs.getvalue()
    for secret in [*SECRETS, "203.0.113.9"]:
        assert secret not in dump


def test_log_lines_are_json_with_severity_and_never_carry_bodies(trained_candidate, captured_logs):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    send_requests_with_identifiers()
    client("predictions_history").get("/?limit=abc")
    post_event(client("drift_check", "cloudevent"), pubsub_cloud_event({"window_hours": 1}))
    lines = [line for line in captured_logs.getvalue().splitlines() if line.strip()]
    assert lines, "the functions logged nothing"
    for line in lines:
        entry = json.loads(line)
        assert entry["severity"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} and entry["message"]
    for secret in SECRETS:
        assert secret not in captured_logs.getvalue()
    assert "38.9" not in captured_logs.getvalue()  # inputs are not logged either
    report = wiring.metadata_store().list(DRIFT_REPORTS)[0]
    for secret in SECRETS:
        assert secret not in json.dumps(report)


class ExplodingStream(io.RawIOBase):
    """A 10 MB body that must never be read (it can only say how large it is)."""

    size = 10_000_000

    def __init__(self):
        self.position = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=0):
        self.position = {0: offset, 1: self.position + offset, 2: self.size + offset}[whence]
        return self.position

    def readinto(self, buffer):
        raise AssertionError("the body was read before its size was checked")


def test_a_declared_oversized_body_is_refused_before_reading(trained_candidate):
    register_model(wiring.artifact_store(), trained_candidate)
    for target in ("predict", "record_outcome"):
        response = client(target).post("/", input_stream=ExplodingStream(), content_type="application/json")
        assert response.status_code == 413
        assert response.get_json()["error"]["field"] == "body"


def test_an_undeclared_oversized_body_is_cut_at_the_limit(trained_candidate):
    """`predict` (ASGI: the test client cannot send it a body without a length)
    is checked end to end with a chunked upload in tests/e2e."""
    register_model(wiring.artifact_store(), trained_candidate)
    body = b'{"instances": [' + b'{"temperature": 36.6, "heart_rate": 80, "blood_pressure": 120},' * 5000 + b"{}]}"
    # No Content-Length, as with a chunked upload: the server must stop reading at the limit.
    response = client("record_outcome").post("/", input_stream=io.BytesIO(body), content_type="application/json",
                                       environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True})
    assert response.status_code == 413
