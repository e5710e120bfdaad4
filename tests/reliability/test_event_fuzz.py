"""Hostile messages on every event endpoint, on both backends (SQLite and a
local folder; the Firestore and Cloud Storage emulators): each is answered
without a 5xx -- 200 (acknowledged) when the envelope parses, 4xx when the
framework could not parse the body -- nothing is stored or launched, and
the reason is logged at ERROR as "message dropped..." (what the log-based
metric counts)."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from datetime import datetime, timezone

import pytest

from shared import wiring
from shared.stores.metadata.port import (
    DRIFT_AGGREGATES,
    DRIFT_REPORTS,
    EXPERIMENTS,
    LEASES,
    PROCESSED_EVENTS,
    PROMOTIONS,
    TRAINING_REQUESTS,
)
from tests.integration.events import post_event, pubsub_cloud_event
from tests.integration.functions_client import client

ENDPOINTS = ("drift_check", "retrain", "ingest_clinical", "ingest_reference")
COLLECTIONS = (DRIFT_AGGREGATES, DRIFT_REPORTS, EXPERIMENTS, LEASES, PROCESSED_EVENTS, PROMOTIONS,
               TRAINING_REQUESTS)
DEEP = 100_000


class RecordingLauncher:
    def __init__(self):
        self.launched = []

    def launch(self, request_id: str) -> str:
        self.launched.append(request_id)
        return "recorded"


@pytest.fixture(params=["embedded", "emulators"])
def backend(request):
    if request.param == "emulators":
        request.getfixturevalue("firestore_env")
        request.getfixturevalue("gcs_env")
    launcher = RecordingLauncher()
    wiring.override("training_launcher", launcher)
    return launcher


def structured(envelope: dict, *, raw: bytes | None = None) -> tuple[dict, bytes]:
    """A structured-mode CloudEvent around `envelope` (or exactly `raw`)."""
    event = {"specversion": "1.0", "type": "google.cloud.pubsub.topic.v1.messagePublished",
             "source": "//pubsub.googleapis.com/projects/demo/topics/test", "id": uuid.uuid4().hex,
             "datacontenttype": "application/json", "data": envelope}
    return {"Content-Type": "application/cloudevents+json"}, raw if raw is not None else json.dumps(event).encode()


def envelope_with(**message_fields) -> dict:
    message = {"data": base64.b64encode(b"{}").decode(), "messageId": uuid.uuid4().hex,
               "publishTime": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}
    message.update(message_fields)
    return {"message": message, "subscription": "projects/demo/subscriptions/test"}


def data_nested(depth: int) -> str:
    return base64.b64encode(('{"a":' + "[" * depth + "]" * depth + "}").encode()).decode()


def deep_envelope(depth: int) -> bytes:
    return b'{"specversion":"1.0","id":"x","source":"s","type":"t","data":' + b"[" * depth + b"]" * depth + b"}"


# (case id, request (headers, body), status, logged field); the same on every endpoint
COMMON = [
    ("attributes-string", lambda: structured(envelope_with(attributes="source=x")), 200, None),
    ("attributes-list", lambda: structured(envelope_with(attributes=["source", "x"])), 200, None),
    ("publish-time-number", lambda: structured(envelope_with(publishTime=1767225600)), 200, None),
    ("publish-time-future", lambda: structured(envelope_with(publishTime="9999-12-31T23:59:59Z")), 200,
     "publishTime"),
    # 100,000 levels do not fit in a body: refused by size before any parsing
    ("data-nested-100000", lambda: structured(envelope_with(data=data_nested(DEEP))), 413, "body"),
    ("data-nested-10000", lambda: structured(envelope_with(data=data_nested(10_000))), 200, None),
    ("envelope-nested-100000", lambda: structured({}, raw=deep_envelope(DEEP)), 413, "body"),
    ("envelope-nested-20000", lambda: structured({}, raw=deep_envelope(20_000)), 400, "body"),
    ("body-not-json", lambda: structured({}, raw=b'{"specversion": "1.0", "id": '), 400, "body"),
    ("body-not-utf8", lambda: structured({}, raw=b"\x00\xff\xfe{not utf-8"), 400, "body"),
    ("body-oversized", lambda: structured(envelope_with(data=base64.b64encode(b"x" * 300_000).decode())), 413,
     "body"),
    ("data-oversized", lambda: structured(envelope_with(data=base64.b64encode(
        json.dumps({"x": "y" * 90_000}).encode()).decode())), 200, None),
    ("unknown-field", lambda: pubsub_cloud_event({"patient_name": "Jane Roe", "notes": "HIV+"}), 200, "data"),
    ("unknown-attribute", lambda: pubsub_cloud_event({}, attributes={"mrn": "12345678"}), 200, "attributes"),
]
RETRAIN_CASES = [
    ("window-end-number", {"report_id": "r-1", "window_end": 5}, "window_end"),
    ("partition-traversal", {"report_id": "r-1", "partition": "lake/clinical/date=../../etc"}, "partition"),
    ("report-id-path", {"report_id": "a/b/c"}, "report_id"),
    ("report-id-long", {"report_id": "r" * 1600}, "report_id"),
    ("no-evidence", {"reason": "because"}, "report_id"),
    ("manual-without-name", {"reason": "manual"}, "report_id"),
    ("manual-bad-name", {"reason": "manual", "requested_by": "Jane Roe, MRN 123"}, "requested_by"),
    ("report-that-does-not-exist", {"report_id": "20260101T000000Z-abcdef123456"}, "report_id"),
]
DRIFT_CASES = [
    ("hourly-ten-years", {"aggregation": "hourly", "window_hours": 87600}, "window_hours"),
    ("aggregate-hour-number", {"aggregate_hour": 5}, "aggregate_hour"),
    ("window-hours-string", {"window_hours": "24"}, "window_hours"),
    ("window-end-future", {"window_end": "9999-12-31T00:00:00Z"}, "window_end"),
]
INGEST_CASES = [("date-traversal", {"date": "../../etc"}, "date")]


def assert_refused(response, status, field, mlops_log, launcher):
    assert response.status_code == status, response.get_data()[:300]
    if status != 200:
        assert response.get_json()["error"]["field"] == field
    dropped = [record for record in mlops_log.records if record.getMessage().startswith("message dropped")]
    assert dropped, [record.getMessage() for record in mlops_log.records]
    assert dropped[0].levelno == logging.ERROR
    if field is not None:
        assert dropped[0].fields["field"] == field
    assert launcher.launched == []
    metadata = wiring.metadata_store()
    for collection in COLLECTIONS:
        assert list(metadata.list(collection)) == [], collection
    store = wiring.artifact_store()
    assert list(store.list_paths("reports/")) == [] and list(store.list_paths("lake/")) == []


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case, make_request, status, field", COMMON, ids=[case[0] for case in COMMON])
def test_a_hostile_envelope_is_refused_without_a_5xx(backend, mlops_log, endpoint, case, make_request, status,
                                                    field):
    response = post_event(client(endpoint, "cloudevent"), make_request())
    assert_refused(response, status, field, mlops_log, backend)


@pytest.mark.parametrize("endpoint, data, field", [
    *[("retrain", data, field) for _, data, field in RETRAIN_CASES],
    *[("drift_check", data, field) for _, data, field in DRIFT_CASES],
    *[("ingest_clinical", data, field) for _, data, field in INGEST_CASES],
], ids=[case[0] for case in (*RETRAIN_CASES, *DRIFT_CASES, *INGEST_CASES)])
def test_a_message_outside_its_topic_schema_is_acknowledged_and_logged(backend, mlops_log, endpoint, data, field):
    response = post_event(client(endpoint, "cloudevent"), pubsub_cloud_event(data))
    assert_refused(response, 200, field, mlops_log, backend)
