"""No identifier sent in a message reaches a store, an artifact, a log line
or a command line: the identifier rides in every field, attribute and
header of accepted and refused messages on every event endpoint, then every
byte under the data folder, every document of every metadata collection and
every stored object (SQLite and a folder; the Firestore emulator and
fake-gcs-server), every log line (ours and the training job's, a real
subprocess) and the job's command line are searched for it."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest

from shared import wiring
from shared.training.launcher.local import LocalTrainingLauncher
from tests.conftest import register_model
from tests.integration.events import post_event, pubsub_cloud_event
from tests.integration.functions_client import client

# Shaped to pass every id check, so that only "never stored" keeps it out.
IDENTIFIER = "MRN-73915-NHS-44551"
NAME = "JaneQRoe1957"


def carrying_the_identifier(data: dict, attributes: dict | None = None):
    """(headers, body) of a binary-mode CloudEvent with the identifier in its
    message id, every ce- attribute that takes text, and a stray header."""
    headers, body = pubsub_cloud_event(data, attributes, message_id=IDENTIFIER)
    headers = dict(headers)
    headers.update({"ce-id": IDENTIFIER, "ce-source": f"//patients/{IDENTIFIER}", "ce-subject": IDENTIFIER,
                    "X-Patient-Id": IDENTIFIER, "User-Agent": NAME})
    return headers, body


def every_field_of(schema_fields, value=IDENTIFIER) -> dict:
    return {name: value for name in schema_fields}


def stored_documents_and_objects() -> dict[str, bytes]:
    """Every metadata document and stored object, whichever backend holds them."""
    from shared.stores.metadata import port

    metadata, store = wiring.metadata_store(), wiring.artifact_store()
    found = {}
    for collection in {value for name, value in vars(port).items() if name.isupper() and isinstance(value, str)}:
        for number, document in enumerate(metadata.list(collection, limit=1000)):
            found[f"{collection}/{number}"] = json.dumps(document, default=str).encode()
    for path in store.list_paths(""):
        found[path] = store.read_bytes(path)
    return found


def assert_nowhere(data_dir: Path, logs: str, command_lines: list, stored: dict[str, bytes] | None = None) -> None:
    for needle in (IDENTIFIER, NAME):
        for path in data_dir.rglob("*"):
            if path.is_file():
                assert needle.encode() not in path.read_bytes(), f"{needle} stored in {path}"
        for name, content in (stored or {}).items():
            assert needle.encode() not in content, f"{needle} stored in {name}"
        assert needle not in logs, f"{needle} logged"
        assert not any(needle in " ".join(map(str, args)) for args in command_lines), f"{needle} on a command line"


@pytest.fixture(params=["embedded", "emulators"])
def launcher(request):
    if request.param == "emulators":
        request.getfixturevalue("firestore_env")
        request.getfixturevalue("gcs_env")
    launcher = LocalTrainingLauncher(max_retries=0)
    wiring.override("training_launcher", launcher)
    return launcher


def test_no_identifier_from_a_message_is_stored_logged_or_passed(trained_candidate, quick_training_env, launcher,
                                                                  capfd, mlops_log):
    from shared.event_bus.schemas import DRIFT_CHECK, INGEST_CLINICAL, INGEST_REFERENCE, RETRAIN
    from shared.stores.metadata.port import DRIFT_REPORTS, EXPERIMENTS, TRAINING_REQUESTS

    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    endpoints = {"drift_check": DRIFT_CHECK, "retrain": RETRAIN, "ingest_clinical": INGEST_CLINICAL,
                 "ingest_reference": INGEST_REFERENCE}
    # Refused: the identifier in every field the topic has, in an unknown one, and in attributes.
    for endpoint, schema in endpoints.items():
        for data, attributes in [
            (every_field_of(schema.fields), None),
            ({"patient_name": NAME, "notes": f"{IDENTIFIER} HIV+"}, None),
            ({f"{IDENTIFIER}": 1}, None),
            ({}, {"source": IDENTIFIER, "report_id": IDENTIFIER, IDENTIFIER: NAME, "mrn": IDENTIFIER}),
        ]:
            response = post_event(client(endpoint, "cloudevent"), carrying_the_identifier(data, attributes))
            assert response.status_code == 200, (endpoint, response.get_data()[:200])
    raw = pubsub_cloud_event({})[1]
    for endpoint in endpoints:  # and in bodies the framework cannot parse
        envelope = json.loads(raw)
        envelope["message"]["data"] = base64.b64encode(f'{{"x": "{IDENTIFIER}"'.encode()).decode()
        post_event(client(endpoint, "cloudevent"), ({"Content-Type": "application/json", "ce-id": IDENTIFIER,
                                                     "ce-specversion": "1.0", "ce-type": "t", "ce-source": "s"},
                                                    json.dumps(envelope)))
        post_event(client(endpoint, "cloudevent"), ({"Content-Type": "application/cloudevents+json"},
                                                    f'{{"id": "{IDENTIFIER}", "data": [[[['.encode()))
    assert wiring.metadata_store().list(DRIFT_REPORTS) == []
    assert launcher.processes == []
    # Accepted: a drift check and an operator's retrain, the identifier only where no check can refuse it.
    checked = post_event(client("drift_check", "cloudevent"), carrying_the_identifier(
        {"window_hours": 1, "source": "cloud-scheduler"}, {"source": "cloud-scheduler"}))
    assert checked.status_code == 200
    assert len(wiring.metadata_store().list(DRIFT_REPORTS)) == 1
    retrained = post_event(client("retrain", "cloudevent"), carrying_the_identifier(
        {"reason": "manual", "requested_by": "ops.lead"}, {"source": "cli"}))
    assert retrained.status_code == 200
    launcher.wait_all(timeout=300)
    assert [process.returncode for process in launcher.processes] == [0]
    assert len(wiring.metadata_store().list(TRAINING_REQUESTS)) == 1
    assert len(wiring.metadata_store().list(EXPERIMENTS)) == 1  # the job ran, from its request's id alone

    captured = capfd.readouterr()
    logs = captured.out + captured.err + "\n".join(
        record.getMessage() + json.dumps(getattr(record, "fields", {}), default=str) for record in mlops_log.records)
    assert "message dropped" in logs  # the refusals were logged -- without what they refused
    data_dir = Path(wiring.settings().local_data_dir)
    stored = stored_documents_and_objects()
    assert any(name.startswith("experiments/") for name in stored) and any(name.startswith("models/")
                                                                           for name in stored)
    assert_nowhere(data_dir, logs, [process.args for process in launcher.processes], stored)


def test_the_search_finds_an_identifier_that_is_stored(tmp_path):
    """The check itself can fail: an identifier planted in a store file is found."""
    (tmp_path / "store.bin").write_bytes(b"prefix " + IDENTIFIER.encode() + bytes(uuid.uuid4().bytes))
    with pytest.raises(AssertionError, match="stored in"):
        assert_nowhere(tmp_path, "", [])
    with pytest.raises(AssertionError, match="stored in training_requests/0"):
        assert_nowhere(tmp_path / "empty", "", [], {"training_requests/0": IDENTIFIER.encode()})
    with pytest.raises(AssertionError, match="command line"):
        assert_nowhere(tmp_path / "empty", "", [["python", "-m", "jobs.train", "--request", IDENTIFIER]])
