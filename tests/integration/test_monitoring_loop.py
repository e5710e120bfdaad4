"""The loop on local backends: shifted traffic -> drift check (CloudEvent) ->
retrain request on the local bus -> new champion -> /predict serves it."""

import base64
import json
import os
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from shared import wiring
from shared.event_bus.schemas import message_ref
from shared.models import registry
from shared.stores.metadata.port import DRIFT_REPORTS, EXPERIMENTS, LEASES, PROCESSED_EVENTS, PROMOTIONS
from shared.training.synthetic_data import generate_reference_data, label_by_rule
from tests.conftest import register_model
from tests.integration.events import post_event, pubsub_cloud_event
from tests.integration.functions_client import client

QUERY = "/?temperature=36.6&heart_rate=80&blood_pressure=120"


def send_traffic(rows: int, seed: int, weights=None, label_outcomes: bool = False) -> list[str]:
    X, _ = generate_reference_data(rows, seed=seed, profile_weights=weights)
    instances = [dict(zip(("temperature", "heart_rate", "blood_pressure"), row)) for row in X.tolist()]
    response = client("predict").post("/", json={"instances": instances})
    assert response.status_code == 200
    ids = [item["prediction_id"] for item in response.get_json()["predictions"]]
    if label_outcomes:
        outcome = client("record_outcome")
        for prediction_id, label in zip(ids, label_by_rule(X)):
            assert outcome.post("/", json={"prediction_id": prediction_id, "label": label}).status_code == 200
    return ids


@pytest.mark.slow
def test_shifted_traffic_closes_the_loop_locally(weak_candidate, quick_training_env):
    os.environ["RETRAIN_MIN_CHANGED_LABELS"] = "100"  # one labelled window: retrain at once (waiting: hourly tests)
    wiring.reset()
    champion = register_model(wiring.artifact_store(), weak_candidate, metadata=wiring.metadata_store())
    send_traffic(400, seed=3, weights={"acute": 0.6, "mild": 0.3}, label_outcomes=True)
    drift = client("drift_check", "cloudevent")
    nightly = pubsub_cloud_event({"window_hours": 1}, message_id="nightly-1")
    response = post_event(drift, nightly)
    assert response.status_code == 200
    reports = wiring.metadata_store().list(DRIFT_REPORTS)
    assert len(reports) == 1 and reports[0]["decision"] == "drift"
    report = reports[0]
    assert report["sample_size"] == 400 and report["retrain_request_id"]
    stored = json.loads(wiring.artifact_store().read_bytes(f"reports/drift/{report['report_id']}/report.json"))
    assert stored["features"]["temperature"]["psi"] == report["features"]["temperature"]["psi"]
    png = wiring.artifact_store().read_bytes(report["plots"]["temperature"])
    assert png.startswith(b"\x89PNG")
    wiring.event_bus().join(timeout=120)  # the local bus delivers the retrain request in the background
    wiring.training_launcher().wait_all(timeout=300)  # the function answered once the job started: wait for it
    experiments = wiring.metadata_store().list(EXPERIMENTS)
    assert len(experiments) == 1 and experiments[0]["promotion"]["promoted"], experiments[0]["promotion"]
    assert experiments[0]["data_sources"]["outcomes"]["rows"] == 400
    # input drift began with this window: the retrain knows, from the report, and records how it weighed
    assert experiments[0]["trigger"]["changed_since"] == report["window_start"]
    assert experiments[0]["data_sources"]["weights"]["pre_change"]["changed_since"] == report["window_start"]
    # the gate was told which rows came since the change (none here: no class was relabelled)
    assert experiments[0]["promotion"]["rows_since_change"] == 0
    new_version = registry.read_champion(wiring.artifact_store())[0]["version"]
    assert new_version != champion["version"]
    # the new champion's baseline is the shifted window's population, not its training mix
    assert registry.read_baseline(wiring.artifact_store(), new_version)["rows"] == 400
    served = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and served != new_version:
        served = client("predict").get(QUERY).get_json()["model_version"]
        time.sleep(0.2)
    assert served == new_version
    # the same nightly message again: same window, same report, no second request
    assert post_event(drift, nightly).status_code == 200
    assert len(wiring.metadata_store().list(DRIFT_REPORTS)) == 1
    # one retrain request here; the job (a subprocess) published the model-promoted notice
    assert [topic for topic, _ in wiring.event_bus().published] == ["retrain-requests"]
    [done] = wiring.metadata_store().list(PROCESSED_EVENTS)
    assert done["promoted"] and done["status"] == "done"
    [outbox] = wiring.metadata_store().list(PROMOTIONS)  # closed once model-promoted was published
    assert outbox["status"] == "done"
    # the next day is shifted the same way: the shift was learned, so it is not drift again
    start = datetime.now(timezone.utc)
    send_traffic(400, seed=4, weights={"acute": 0.6, "mild": 0.3})
    next_day = pubsub_cloud_event({"window_start": start.isoformat(),
                                   "window_end": datetime.now(timezone.utc).isoformat()})
    assert post_event(drift, next_day).status_code == 200
    second = max(wiring.metadata_store().list(DRIFT_REPORTS), key=lambda report: report["window_end"])
    assert second["sample_size"] == 400 and second["champion_version"] == new_version
    assert second["decision"] in ("ok", "warning"), second["reasons"]
    # the new champion's figure on its held-out production outcomes, and how clinicians chose them
    reference = registry.read_baseline(wiring.artifact_store(), new_version)["outcome_metrics"]
    assert 50 < reference["rows"] < 200 and set(reference["labelled_share_by_prediction"].values()) == {1.0}
    # until when it learnt from labels: the drift check judges only outcomes recorded after (learnt_outcomes)
    labels_until = registry.read_baseline(wiring.artifact_store(), new_version)["labels_until"]
    assert labels_until == experiments[0]["data_sources"]["window"]["end"] and labels_until < second["window_start"]
    assert [topic for topic, _ in wiring.event_bus().published] == ["retrain-requests"]


def test_normal_traffic_is_not_drift_and_publishes_nothing(trained_candidate):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    send_traffic(400, seed=21)
    response = post_event(client("drift_check", "cloudevent"), pubsub_cloud_event({"window_hours": 1}))
    assert response.status_code == 200
    report = wiring.metadata_store().list(DRIFT_REPORTS)[0]
    assert report["decision"] in ("ok", "warning"), report["reasons"]
    assert wiring.event_bus().published == []


def test_late_outcomes_count_in_the_window_they_are_recorded_in(trained_candidate):
    from shared.monitoring.drift_check import run_drift_check
    from shared.schema import Vitals
    from shared.serving.prediction_service import predict_and_log, record_outcome

    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    now = datetime.now(timezone.utc)
    made = now - timedelta(days=3)
    X, _ = generate_reference_data(120, seed=5)
    answer = predict_and_log([Vitals(*row) for row in X.tolist()], loader=wiring.model_loader(),
                             store=wiring.prediction_store(), batch=True, now=made)
    for item in answer["predictions"]:  # clinicians disagree with every one, three days later
        wrong = "ENFERMEDAD TERMINAL" if item["prediction"] != "ENFERMEDAD TERMINAL" else "NO ENFERMO"
        record_outcome(wiring.prediction_store(), item["prediction_id"], wrong, now=now)
    dependencies = wiring.drift_check_dependencies()
    today = run_drift_check(start=now - timedelta(hours=1), end=now + timedelta(minutes=1), **dependencies)
    assert today["sample_size"] == 0 and today["performance"]["outcomes"] == 120
    assert today["performance"]["macro_f1"] == 0.0 and today["performance"]["status"] == "degraded"
    then = run_drift_check(start=made - timedelta(hours=1), end=made + timedelta(hours=1), **dependencies)
    assert then["sample_size"] == 120 and then["performance"]["outcomes"] == 0


def test_too_few_predictions_is_insufficient_data(trained_candidate):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    send_traffic(20, seed=1, weights={"acute": 0.9})
    post_event(client("drift_check", "cloudevent"), pubsub_cloud_event({"window_hours": 1}, structured=True))
    assert wiring.metadata_store().list(DRIFT_REPORTS)[0]["decision"] == "insufficient_data"
    assert wiring.event_bus().published == []


@pytest.mark.slow
def test_duplicate_retrain_delivery_trains_once(weak_candidate, quick_training_env):
    register_model(wiring.artifact_store(), weak_candidate, metadata=wiring.metadata_store())
    wiring.metadata_store().put(DRIFT_REPORTS, "r-1", {"report_id": "r-1", "decision": "drift"})
    retrain = client("retrain", "cloudevent")
    event = pubsub_cloud_event({"reason": "test", "report_id": "r-1"}, message_id="m-1")
    for _ in range(5):  # while the job runs, a redelivery is not launched twice
        assert post_event(retrain, event).status_code == 200
    wiring.training_launcher().wait_all(timeout=300)
    assert len(wiring.metadata_store().list(EXPERIMENTS)) == 1
    other_message_same_report = pubsub_cloud_event({"reason": "again", "report_id": "r-1"}, message_id="m-2")
    assert post_event(retrain, other_message_same_report).status_code == 200
    wiring.training_launcher().wait_all(timeout=300)
    assert len(wiring.metadata_store().list(EXPERIMENTS)) == 1


def test_old_retrain_requests_are_dropped(trained_candidate):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    old = datetime.now(timezone.utc) - timedelta(hours=2)
    response = post_event(client("retrain", "cloudevent"), pubsub_cloud_event(
        {"reason": "manual", "requested_by": "ops"}, publish_time=old))
    assert response.status_code == 200
    assert wiring.metadata_store().list(EXPERIMENTS) == []


def test_a_held_lease_no_longer_fails_the_delivery(trained_candidate):
    """The function only launches; waiting for the lease is the job's business,
    so a busy lease costs no delivery attempt and no dead letter."""
    from shared.training.launcher.local import LocalTrainingLauncher

    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    wiring.metadata_store().acquire_lease("training", "someone-else", 600, datetime.now(timezone.utc))
    launcher = LocalTrainingLauncher(max_retries=0)
    wiring.override("training_launcher", launcher)
    response = post_event(client("retrain", "cloudevent"), pubsub_cloud_event(
        {"reason": "manual", "requested_by": "ops"}))
    assert response.status_code == 200
    [process] = launcher.processes
    process.kill()
    process.wait()
    assert wiring.metadata_store().list(EXPERIMENTS) == []
    assert wiring.metadata_store().get(LEASES, "training")["holder"] == "someone-else"


POISONS = {
    "not base64": lambda envelope: envelope["message"].update(data="!!not base64!!"),
    "not JSON": lambda envelope: envelope["message"].update(data=base64.b64encode(b"retrain please").decode()),
    "not an object": lambda envelope: envelope["message"].update(data=base64.b64encode(b"[1, 2]").decode()),
    "not an envelope": lambda envelope: envelope.pop("message"),
}


@pytest.mark.parametrize("poison", POISONS)
@pytest.mark.parametrize("function", ["retrain", "drift_check"])
def test_poison_messages_are_acknowledged_logged_and_do_nothing(trained_candidate, quick_training_env, mlops_log,
                                                                function, poison):
    """A message no retry can decode is acknowledged (2xx: Pub/Sub stops
    redelivering), says why in the log, and neither trains nor checks."""
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    send_traffic(250, seed=2, weights={"acute": 0.9})  # enough shifted traffic that a check would find drift
    headers, body = pubsub_cloud_event({"reason": "drift", "window_hours": 1}, message_id="poison-1")
    envelope = json.loads(body)
    POISONS[poison](envelope)
    response = client(function, "cloudevent").post("/", headers=headers, data=json.dumps(envelope))
    assert response.status_code == 200
    wiring.event_bus().join(timeout=60)
    metadata = wiring.metadata_store()
    assert metadata.list(EXPERIMENTS) == [] and metadata.list(PROCESSED_EVENTS) == []
    assert metadata.list(DRIFT_REPORTS) == [] and wiring.event_bus().published == []
    dropped = [record for record in mlops_log.records if record.getMessage() == "message dropped"]
    assert [record.levelname for record in dropped] == ["ERROR"]
    # the publisher's id is logged as its digest: its raw text could be anything
    assert dropped[0].fields["event_id"] == message_ref("poison-1") and dropped[0].fields["reason"]


def test_record_outcome_contract(trained_candidate):
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    prediction_id = client("predict").get(QUERY).get_json()["prediction_id"]
    outcome = client("record_outcome")
    first = outcome.post("/", json={"prediction_id": prediction_id, "label": "ENFERMEDAD LEVE"})
    assert first.status_code == 200 and first.get_json()["outcome"]["label"] == "ENFERMEDAD LEVE"
    second = outcome.post("/", json={"prediction_id": prediction_id, "label": "NO ENFERMO"}).get_json()
    assert second["outcome"]["label"] == "NO ENFERMO"
    assert second["outcome"]["updated_at"] >= first.get_json()["outcome"]["updated_at"]
    missing = outcome.post("/", json={"prediction_id": "0" * 32, "label": "NO ENFERMO"})
    assert missing.status_code == 404 and missing.get_json()["error"]["field"] == "prediction_id"
    invalid = outcome.post("/", json={"prediction_id": prediction_id, "label": "SICK"})
    assert invalid.status_code == 400 and invalid.get_json()["error"]["field"] == "label"
    assert outcome.get("/").status_code == 405


def test_a_raw_pubsub_push_body_reaches_the_event_function(trained_candidate):
    """What infra's push subscriptions send: no CloudEvent headers, the bare
    Pub/Sub envelope; functions-framework converts it to the same CloudEvent."""
    from shared.event_bus.messages import envelope

    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    send_traffic(250, seed=6)
    body = envelope({"window_hours": 1}, {"source": "cloud-scheduler"}, message_id="push-1")
    body["subscription"] = "projects/demo/subscriptions/mlops-drift-check-requests-to-drift-check"
    response = client("drift_check", "cloudevent").post("/", json=body)
    assert response.status_code == 200
    [report] = wiring.metadata_store().list(DRIFT_REPORTS)
    # the push reached the function; its message id is stored only as a digest
    assert report["sample_size"] == 250 and report["trigger"]["message_id"] == message_ref("push-1")


def write_clinical_partition(day: date, rows: int, seed: int, weights=None, parts: int = 2) -> None:
    """A clean, de-identified lake partition, as the clinical ingestion writes it."""
    import polars as pl

    from shared.ingestion import lake
    from shared.ingestion.deidentification import OUTPUT_COLUMNS

    X, y = generate_reference_data(rows, seed=seed, profile_weights=weights)
    frame = pl.DataFrame({"patient_pseudonym": [f"p{index % 50}" for index in range(rows)],
                          "recorded_date": [day] * rows, "temperature": X[:, 0], "heart_rate": X[:, 1],
                          "blood_pressure": X[:, 2], "label": list(y)}).select(OUTPUT_COLUMNS)
    store, paths, contents = wiring.artifact_store(), [], []
    for index, part in enumerate(frame.iter_slices(-(-rows // parts))):
        paths.append(lake.staged_part_path(lake.CLINICAL, day, "test", index))
        contents.append(lake.write_frame(store, paths[-1], part))
    lake.commit_partition(store, day, {"run_id": "test", "parts": paths, "quarantine_parts": [], "rows": rows,
                                       "content_sha256": lake.content_digest(contents), "watermark": None})


def test_the_lake_partition_message_checks_new_clinical_data(trained_candidate, mlops_log):
    """`{"lake_partition": "latest" | "YYYY-MM-DD"}` checks a day of the lake
    instead of the logged predictions: the newest day by default, a named day
    on request, and a day that is not there is dropped, not retried."""
    from shared.event_bus.local import LocalEventBus

    os.environ["RETRAIN_MIN_CHANGED_LABELS"] = "100"  # a labelled day: its 400 labels are enough to retrain on
    wiring.reset()
    champion = register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    bus = LocalEventBus()  # no subscriber: count what is published, train nothing
    wiring.override("event_bus", bus)
    write_clinical_partition(date(2026, 11, 20), 300, seed=31)
    write_clinical_partition(date(2026, 11, 21), 400, seed=32, weights={"acute": 0.6, "mild": 0.3})
    send_traffic(250, seed=21)  # logged predictions, which this message must not read
    drift = client("drift_check", "cloudevent")

    assert post_event(drift, pubsub_cloud_event({"lake_partition": "latest"}, message_id="lake-1")).status_code == 200
    [latest] = wiring.metadata_store().list(DRIFT_REPORTS)
    assert latest["source"] == "lake" and latest["partition"] == "lake/clinical/date=2026-11-21"
    assert latest["report_id"].startswith("lake-2026-11-21-") and latest["champion_version"] == champion["version"]
    assert latest["sample_size"] == 400 and latest["performance"]["outcomes"] == 400  # the clinicians' labels
    assert latest["decision"] == "drift" and latest["trigger"]["message_id"] == message_ref("lake-1")
    assert [(topic, message.data["report_id"]) for topic, message in bus.published] == [
        ("retrain-requests", latest["report_id"])]

    assert post_event(drift, pubsub_cloud_event({"lake_partition": "2026-11-20"})).status_code == 200
    named = next(r for r in wiring.metadata_store().list(DRIFT_REPORTS) if r["report_id"] != latest["report_id"])
    assert named["partition"] == "lake/clinical/date=2026-11-20" and named["sample_size"] == 300
    assert named["decision"] in ("ok", "warning"), named["reasons"]
    # the retrain the newer day requested was offered this day's labels: not judged again (learnt_outcomes)
    assert named["rows_left_out"]["outcomes_already_learnt"] == 300 and named["performance"]["outcomes"] == 0
    assert named["learnt_outcomes"]["until"] == latest["window_end"]

    assert post_event(drift, pubsub_cloud_event({"lake_partition": "latest"})).status_code == 200  # redelivery
    assert post_event(drift, pubsub_cloud_event({"lake_partition": "2026-11-19"})).status_code == 200
    assert len(wiring.metadata_store().list(DRIFT_REPORTS)) == 2 and len(bus.published) == 1
    dropped = [r for r in mlops_log.records if r.getMessage().startswith("message dropped")]
    assert len(dropped) == 1 and "2026-11-19" in dropped[0].fields["reason"]


def test_a_warning_is_reported_and_requests_no_retrain(trained_candidate):
    """A real (significant) change with PSI over its warning level but short of
    the drift sizes (set out of reach here) makes a `warning` report, which is
    stored but publishes nothing; a change that is not significant is no warning."""
    os.environ.update({"DRIFT_PSI_WARNING": "0", "DRIFT_PSI_THRESHOLD": "100", "DRIFT_WASSERSTEIN_THRESHOLD": "100",
                       "DRIFT_LABEL_JS_THRESHOLD": "2", "DRIFT_DESIGN_EFFECT": "1"})
    wiring.reset()
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    send_traffic(300, seed=22, weights={"acute": 0.6, "mild": 0.3})
    assert post_event(client("drift_check", "cloudevent"), pubsub_cloud_event({"window_hours": 1})).status_code == 200
    [report] = wiring.metadata_store().list(DRIFT_REPORTS)
    assert report["decision"] == "warning" and report["retrain_request_id"] is None
    for feature in report["features"].values():
        significant = feature["chi_square_p_value"] < report["thresholds"]["alpha_per_test"]
        assert feature["status"] == ("warning" if significant else "ok")
    assert report["features"]["temperature"]["status"] == "warning"
    assert report["prediction_drift"]["status"] == "ok"
    assert wiring.event_bus().published == []


def test_five_stationary_nights_of_repeated_patients_retrain_on_none(trained_candidate):
    """Issue 20's make-run case: each night 70 patients from the reference
    population, each logged 3 times (fresh measurement noise), checked with an
    explicit window. Before the design effect, 3 of 5 such nights retrained."""
    import numpy as np

    from shared.training.synthetic_data import MEASUREMENT_NOISE

    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    for night in range(5):
        start = datetime.now(timezone.utc)
        X, _ = generate_reference_data(70, seed=300 + night)
        X = np.round(np.repeat(X, 3, axis=0) + np.random.default_rng(night).normal(0, MEASUREMENT_NOISE, (210, 3)), 1)
        instances = [dict(zip(("temperature", "heart_rate", "blood_pressure"), row)) for row in X.tolist()]
        assert client("predict").post("/", json={"instances": instances}).status_code == 200
        end = datetime.now(timezone.utc) + timedelta(milliseconds=1)
        window = {"window_start": start.isoformat(), "window_end": end.isoformat()}
        assert post_event(client("drift_check", "cloudevent"), pubsub_cloud_event(window)).status_code == 200
    reports = wiring.metadata_store().list(DRIFT_REPORTS)
    assert [report["sample_size"] for report in reports] == [210] * 5
    assert [report["decision"] for report in reports if report["decision"] == "drift"] == []
    assert wiring.event_bus().published == []
