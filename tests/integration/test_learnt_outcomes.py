"""Degraded outcomes a retrain already learnt from do not request the same
retrain again (`shared/monitoring/learnt_outcomes.py`), on the embedded stores."""

import json
from datetime import timedelta

import pytest

from shared import wiring
from shared.event_bus.local import LocalEventBus
from shared.models import registry
from shared.monitoring.drift_check import run_drift_check, run_hourly_drift_check
from shared.monitoring.retrain_wait import RETRAIN_WAITS
from shared.records import isoformat
from tests.conftest import register_model
from tests.integration.test_hourly_drift import NOW, WINDOW_END, WINDOW_START, log_traffic


@pytest.fixture
def champion(trained_candidate):
    return register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())


def streamed(start, end, bus):
    return run_drift_check(start=start, end=end, predictions=wiring.prediction_store(),
                           artifacts=wiring.artifact_store(), metadata=wiring.metadata_store(), bus=bus,
                           settings=wiring.settings())


def test_outcomes_a_requested_retrain_learnt_from_do_not_request_it_again(champion):
    """A fifth of the predictions wrong, every one labelled at once: "degraded", a retrain
    is requested. A second check over the same hours finds no new evidence; a window
    with one new hour judges that hour alone, and may ask again."""
    log_traffic(wiring.prediction_store(), rows_per_hour=300, seed=12, label_every=1, version=champion["version"])
    bus = LocalEventBus()
    first = streamed(WINDOW_START, WINDOW_END, bus)
    assert first["performance"]["status"] == "degraded" and first["retrain_request_id"] is not None
    assert first["learnt_outcomes"] is None and first["rows_left_out"]["outcomes_already_learnt"] == 0
    wait = wiring.metadata_store().get(RETRAIN_WAITS, champion["version"])
    assert wait["evidence_until"] == isoformat(WINDOW_END)

    again = run_hourly_drift_check(end=NOW, hours=2, predictions=wiring.prediction_store(),
                                   artifacts=wiring.artifact_store(), metadata=wiring.metadata_store(), bus=bus,
                                   settings=wiring.settings(), now=NOW)  # the last two hours, as hourly units
    assert again["report_id"] != first["report_id"]
    assert again["performance"]["outcomes"] == 0 and again["performance"]["status"] == "insufficient_data"
    assert again["rows_left_out"]["outcomes_already_learnt"] == 600
    learnt = again["learnt_outcomes"]
    assert learnt["left_out"] == 600 and learnt["until"] == isoformat(WINDOW_END)
    assert learnt["basis"] == "a retrain already requested for this champion trained on them"
    assert learnt["message"] in again["reasons"] and again["retrain_request_id"] is None

    later = streamed(WINDOW_START + timedelta(hours=1), WINDOW_END + timedelta(hours=1), bus)
    assert later["rows_left_out"]["outcomes_already_learnt"] == 600
    assert later["performance"]["outcomes"] == 300 and later["performance"]["status"] == "degraded"
    assert later["retrain_request_id"] is not None  # new outcomes are new evidence
    assert len(bus.published) == 2


def test_outcomes_recorded_before_the_champions_training_labels_end_are_left_out(champion):
    """The champion's baseline says until when it was trained on labels (a retrain
    writes `labels_until`): outcomes recorded before then are not judged again."""
    log_traffic(wiring.prediction_store(), rows_per_hour=300, seed=13, label_every=1, version=champion["version"])
    artifacts = wiring.artifact_store()
    baseline = dict(registry.read_baseline(artifacts, champion["version"]),
                    labels_until=isoformat(WINDOW_START + timedelta(hours=2)))
    artifacts.write_bytes(registry.model_path(champion["version"], "baseline.json"), json.dumps(baseline).encode(),
                          "application/json")
    bus = LocalEventBus()
    report = streamed(WINDOW_START, WINDOW_END, bus)
    assert report["rows_left_out"]["outcomes_already_learnt"] == 600
    assert report["learnt_outcomes"]["basis"] == "the champion was trained on them"
    assert report["performance"]["outcomes"] == 300  # the third hour's, recorded after its training labels
    page = wiring.artifact_store().read_bytes(report["html"]).decode()
    assert "600 outcomes recorded before" in page and "(the champion was trained on them)" in page
