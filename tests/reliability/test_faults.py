"""Faults survived: stores that vanish and return, tampered artifacts,
duplicate deliveries, a training run that crashes half-way."""

import json
import os
import time
from datetime import datetime, timezone

import pytest

from shared import wiring
from shared.errors import StoreUnavailable
from shared.event_bus.local import LocalEventBus
from shared.models import registry
from shared.models.layout import model_path
from shared.models.loading import ModelLoader
from shared.stores.artifacts.local import LocalArtifactStore
from shared.stores.metadata.port import (
    CHAMPION_HISTORY,
    DRIFT_REPORTS,
    EXPERIMENTS,
    PROCESSED_EVENTS,
    TRAINING_REQUESTS,
)
from shared.stores.metadata.sqlite import SqliteMetadataStore
from shared.training.job import run_training_request
from tests import emulators
from tests.conftest import PROJECT, register_model, start_emulator
from tests.integration.events import post_event, pubsub_cloud_event
from tests.integration.functions_client import client
from tests.integration.test_monitoring_loop import send_traffic

QUERY = "/?temperature=36.6&heart_rate=80&blood_pressure=120"


def timed_get(test_client, path=QUERY):
    started = time.monotonic()
    response = test_client.get(path)
    return response, time.monotonic() - started


def wait_for_status(test_client, status: int, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = test_client.get(QUERY)
        if response.status_code == status:
            return response
        time.sleep(0.3)
    raise AssertionError(f"no {status} within {timeout} s (last {response.status_code})")


@pytest.mark.emulator
def test_prediction_store_goes_away_and_comes_back(trained_candidate):
    port = emulators.free_port()
    firestore = start_emulator(lambda: emulators.start_firestore(port))
    try:
        os.environ.update(firestore.env)
        os.environ.update({"GOOGLE_CLOUD_PROJECT": PROJECT, "PREDICTION_STORE": "firestore",
                           "STORE_TIMEOUT_SECONDS": "3"})
        wiring.reset()
        register_model(wiring.artifact_store(), trained_candidate)
        predict = client("predict")
        wait_for_status(predict, 200)  # a fresh emulator's first commit can take seconds
        answered = [predict.get(QUERY).get_json()["prediction_id"] for _ in range(10)]
        for prediction_id in answered:
            assert wiring.prediction_store().get_prediction(prediction_id).prediction_id == prediction_id
        firestore.stop()
        for _ in range(3):
            response, seconds = timed_get(predict)
            assert response.status_code == 503 and response.get_json()["error"]["code"] == "store_unavailable"
            assert seconds < 10
        firestore = start_emulator(lambda: emulators.start_firestore(port))  # empty, on the same address
        recovered = wait_for_status(predict, 200).get_json()["prediction_id"]
        assert wiring.prediction_store().get_prediction(recovered).prediction_id == recovered
    finally:
        firestore.stop()


@pytest.mark.emulator
def test_artifact_store_unreachable_at_cold_start_then_recovers_then_vanishes(trained_candidate):
    start_emulator(emulators.fake_gcs_binary)  # skip (or fail in CI) before anything runs without it
    port = emulators.free_port()
    os.environ.update({"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}", "GOOGLE_CLOUD_PROJECT": PROJECT,
                       "ARTIFACT_STORE": "gcs", "ARTIFACT_BUCKET": "cold-start", "STORE_TIMEOUT_SECONDS": "1",
                       "MODEL_REFRESH_SECONDS": "1"})
    wiring.reset()
    predict = client("predict")
    response, seconds = timed_get(predict)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "model_unavailable"
    assert seconds < 10
    gcs = start_emulator(lambda: emulators.start_fake_gcs(port))
    try:
        emulators.create_bucket("cold-start", PROJECT)
        manifest = register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
        assert wait_for_status(predict, 200).get_json()["model_version"] == manifest["version"]
    finally:
        gcs.stop()
    time.sleep(1.2)  # past the refresh interval: the next request re-checks a dead store
    for _ in range(3):  # each request, not only the last, is answered from memory within the bound
        response, seconds = timed_get(predict)
        assert response.status_code == 200 and response.get_json()["model_version"] == manifest["version"]
        assert seconds < 5


@pytest.mark.parametrize("damage", ["missing_artifact", "tampered", "truncated"])
def test_a_damaged_new_version_is_refused_and_the_old_one_serves(tmp_path, trained_candidate, damage,
                                                                 mlops_log):
    store = LocalArtifactStore(tmp_path / "artifacts")
    good = register_model(store, trained_candidate)
    clock = [0.0]
    loader = ModelLoader(store, refresh_seconds=1, clock=lambda: clock[0])
    assert loader.get().version == good["version"]
    bad = register_model(store, trained_candidate)
    artifact = store.root / model_path(bad["version"], "model.onnx")  # what serving reads
    if damage == "missing_artifact":
        artifact.unlink()
    elif damage == "tampered":
        artifact.write_bytes(artifact.read_bytes().replace(b"TreeEnsemble", b"TreeEnsembla", 1) + b"\0")
    else:
        artifact.write_bytes(artifact.read_bytes()[:200])
    clock[0] += 5
    assert loader.get().version == good["version"]  # at once: the refresh runs in the background
    loader.wait_for_refresh()
    assert loader.get().version == good["version"]
    reasons = [getattr(record, "fields", {}).get("reason", "") for record in mlops_log.records
               if record.levelname == "ERROR"]
    assert any(bad["version"] in reason or "not found" in reason for reason in reasons), reasons


def test_the_same_drift_check_message_five_times_makes_one_report_and_one_request(trained_candidate):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    os.environ["TRAINING_FAMILIES"] = "xgboost"
    wiring.reset()
    bus = LocalEventBus()  # no subscriber: count what is published
    wiring.override("event_bus", bus)
    send_traffic(300, seed=4, weights={"acute": 0.6, "mild": 0.3})
    drift = client("drift_check", "cloudevent")
    event = pubsub_cloud_event({"window_hours": 1}, message_id="nightly")
    for _ in range(5):
        assert post_event(drift, event).status_code == 200
    assert len(wiring.metadata_store().list(DRIFT_REPORTS)) == 1
    assert [topic for topic, _ in bus.published] == ["retrain-requests"]


class CrashOnPromotion(LocalArtifactStore):
    """The real local store, except that the first champion switch dies."""

    crashes = 0

    def write_if_generation_matches(self, path, data, generation, content_type="application/json"):
        if path == "models/champion.json" and self.crashes:
            self.crashes -= 1
            raise StoreUnavailable("the instance died while switching the champion")
        return super().write_if_generation_matches(path, data, generation, content_type)


def test_a_retrain_that_crashes_half_way_leaves_the_champion_and_the_next_attempt_completes(
        tmp_path, weak_candidate, quick_training_env):
    os.environ["PROMOTION_MAX_RECALL_DROP"] = "1"  # the gate is not under test: the run must reach the promotion
    wiring.reset()
    store = CrashOnPromotion(tmp_path / "artifacts")
    dependencies = dict(wiring.training_job_dependencies(), artifacts=store)
    champion = register_model(store, weak_candidate, metadata=dependencies["metadata"])
    store.crashes = 1
    request = {"key": "retrain-crash-1", "trigger": {"reason": "test", "report_id": "crash-1"}}
    with pytest.raises(StoreUnavailable):
        run_training_request(request, **dependencies, execution="e-1")
    assert registry.read_champion(store)[0]["version"] == champion["version"]
    # the retried task of the same execution takes its own lease back at once
    result = run_training_request(request, **dependencies, execution="e-1", sleep=pytest.fail)
    assert result["status"] == "resumed" and result["promoted"]  # finished the decided promotion, no retraining
    assert registry.read_champion(store)[0]["version"] == result["version"] != champion["version"]
    assert run_training_request(request, **dependencies, execution="e-2")["status"] == "duplicate"
    runs = dependencies["metadata"].list(EXPERIMENTS)
    assert len(runs) == 1 and runs[0]["promotion"]["promoted"]  # the crashed run wrote no record
    assert json.loads(store.read_bytes("models/champion.json"))["previous_version"] == champion["version"]


def test_two_different_requests_never_train_at_the_same_time(weak_candidate, quick_training_env):
    """Two training jobs, real subprocesses, launched together: the second waits
    for the first one's lease instead of failing, then trains on its own turn."""
    from shared.training.launcher.local import LocalTrainingLauncher

    dependencies = wiring.training_job_dependencies()
    register_model(dependencies["artifacts"], weak_candidate, metadata=dependencies["metadata"])
    launcher = LocalTrainingLauncher(max_retries=0)
    for key in ("report-a", "report-b"):
        request = {"key": f"retrain-{key}", "trigger": {"reason": key, "report_id": key}}
        dependencies["metadata"].put(TRAINING_REQUESTS, request["key"], {
            "status": "launching", "request": request, "created_at": datetime.now(timezone.utc).isoformat()})
        launcher.launch(request["key"])
    assert [process.wait(timeout=300) for process in launcher.processes] == [0, 0]
    runs = sorted(dependencies["metadata"].list(EXPERIMENTS), key=lambda run: run["created_at"])
    assert sorted(run["trigger"]["report_id"] for run in runs) == ["report-a", "report-b"]
    assert runs[0]["finished_at"] <= runs[1]["created_at"]  # one after the other, never overlapping


class CrashOnce(SqliteMetadataStore):
    """The real SQLite metadata store, except that the first write to the
    `crash_on` collection once `armed()` says so dies (the instance is killed mid-run)."""

    def __init__(self, database):
        super().__init__(database)
        self.crash_on = None
        self.armed = lambda: True

    def _maybe_crash(self, collection):
        if collection == self.crash_on and self.armed():
            self.crash_on = None
            raise StoreUnavailable(f"the instance died while writing {collection}")

    def put(self, collection, document_id, document):
        self._maybe_crash(collection)
        return super().put(collection, document_id, document)

    def create(self, collection, document_id, document):
        self._maybe_crash(collection)
        return super().create(collection, document_id, document)


class PublishCrashesOnce(LocalEventBus):
    """The local bus (no subscribers), except that the first publish to `crash_on` dies."""

    def __init__(self):
        super().__init__()
        self.crash_on = None

    def publish(self, topic, data, attributes=None):
        if topic == self.crash_on:
            self.crash_on = None
            raise StoreUnavailable(f"the instance died while publishing to {topic}")
        return super().publish(topic, data, attributes)


@pytest.mark.parametrize("step", [CHAMPION_HISTORY, EXPERIMENTS, "model-promoted", PROCESSED_EVENTS])
def test_a_retrain_that_crashes_after_the_champion_switch_completes_once_on_redelivery(
        tmp_path, weak_candidate, quick_training_env, step):
    """The pointer already names the new champion when the run dies (writing
    the audit entry, the experiment, the promoted event or the done-marker).
    The redelivery must finish that run's remaining steps -- not train and
    promote a second model for the same request."""
    os.environ["PROMOTION_MAX_RECALL_DROP"] = "1"  # the gate is not under test: the run must reach the promotion
    wiring.reset()
    dependencies = wiring.training_job_dependencies()
    metadata = CrashOnce(dependencies["metadata"].database)
    bus = PublishCrashesOnce()
    dependencies.update(metadata=metadata, bus=bus)
    champion = register_model(dependencies["artifacts"], weak_candidate, metadata=metadata)
    # the experiment is first recorded before the decision is carried out: die on a write after the switch
    metadata.armed = lambda: registry.read_champion(dependencies["artifacts"])[0]["version"] != champion["version"]
    metadata.crash_on = bus.crash_on = step
    request = {"key": "retrain-crash-after-switch", "trigger": {"reason": "drift", "report_id": "crash-after-switch"}}
    with pytest.raises(StoreUnavailable):
        run_training_request(request, **dependencies, execution="e-1")
    switched = registry.read_champion(dependencies["artifacts"])[0]["version"]
    assert switched != champion["version"]  # the crash came after the switch

    redelivered = run_training_request(request, **dependencies, execution="e-1")  # the task's retry
    assert registry.read_champion(dependencies["artifacts"])[0]["version"] == switched
    assert redelivered.get("version", switched) == switched
    switches = [entry for entry in metadata.list(CHAMPION_HISTORY) if entry["from_version"] == champion["version"]]
    assert [entry["to_version"] for entry in switches] == [switched]  # the audit entry, once
    runs = metadata.list(EXPERIMENTS)
    assert [run["winner"]["version"] for run in runs] == [switched] and runs[0]["promotion"]["promoted"]
    assert [message.data["version"] for topic, message in bus.published if topic == "model-promoted"] == [switched]
    assert run_training_request(request, **dependencies, execution="e-2")["status"] == "duplicate"
