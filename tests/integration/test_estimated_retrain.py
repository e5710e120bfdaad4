"""A retrain requested by the estimated performance alone (CBPE), through
the drift check on the real stores: a night of borderline patients with no
label yet, the input-drift rules switched off so only the estimate can
decide; the request is published, the reason and the page say why; with
DRIFT_ESTIMATED_RETRAIN=false the same night only reports it."""

import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared import wiring
from shared.event_bus.local import LocalEventBus
from shared.models import registry
from shared.models.loading import load_version
from shared.monitoring.baseline import compute_baseline
from shared.monitoring.drift_check import run_drift_check
from shared.monitoring.estimated_performance import reference_from_model
from shared.records import PredictionRecord
from shared.training.candidates import predict_labels
from shared.training.synthetic_data import generate_reference_data

START = datetime(2026, 3, 2, tzinfo=timezone.utc)
END = START + timedelta(hours=24)
BORDERLINE_ONLY = {"healthy": 0.0, "mild": 1.0, "acute": 0.0, "chronic": 0.0, "terminal": 0.0}


@pytest.fixture
def champion(trained_candidate):
    """The champion as training registers it: its baseline carries the holdout reference."""
    winner, data = trained_candidate.winner, trained_candidate.data
    baseline = compute_baseline(data.X_train, predict_labels(winner.pipeline, data.X_holdout, data.labels,
                                                             winner.decision_rule))
    baseline["estimation_reference"] = reference_from_model(winner.pipeline, data.X_holdout, data.y_holdout,
                                                            data.labels, winner.decision_rule)
    artifacts = wiring.artifact_store()
    manifest = registry.register_version(
        artifacts, winner.artifact_bytes, labels=data.labels, metrics=winner.metrics, baseline=baseline,
        data_fingerprint=data.fingerprint, training_parameters={"family": winner.family},
        decision_rule=winner.decision_rule, portable_check_rows=2_000)
    registry.promote(artifacts, wiring.metadata_store(), manifest["version"], reason="test", actor="test")
    return manifest["version"]


def log_night(version: str, weights, rows: int = 1500, seed: int = 11) -> None:
    """A night's predictions as /predict logs them (label, calibrated probabilities, version); no outcome."""
    X, _ = generate_reference_data(rows, seed=seed, profile_weights=weights)
    answers = load_version(wiring.artifact_store(), version).predict(X.tolist())
    wiring.prediction_store().save_predictions([
        PredictionRecord(uuid.uuid4().hex, START + timedelta(seconds=40 * i), *X[i].tolist(), label, probabilities,
                         version) for i, (label, probabilities) in enumerate(answers)])


def check(enabled: bool) -> tuple[dict, LocalEventBus]:
    os.environ.update({"DRIFT_PSI_THRESHOLD": "100", "DRIFT_WASSERSTEIN_THRESHOLD": "100",
                       "DRIFT_LABEL_JS_THRESHOLD": "2", "RETRAIN_MIN_CHANGED_LABELS": "0",
                       "DRIFT_ESTIMATED_RETRAIN": "true" if enabled else "false"})
    wiring.reset()
    bus = LocalEventBus()
    report = run_drift_check(start=START, end=END, predictions=wiring.prediction_store(),
                             artifacts=wiring.artifact_store(), metadata=wiring.metadata_store(), bus=bus,
                             settings=wiring.settings())
    return report, bus


def test_an_estimated_drop_requests_a_retrain_on_its_own(champion):
    log_night(champion, BORDERLINE_ONLY)
    report, _ = check(enabled=True)
    drop = report["estimated_performance"]["drop"]
    assert report["decision"] == "drift" and drop["status"] == "degraded"
    assert [reason.split(":")[0] for reason in report["decided_by"]] == ["estimated performance"]
    assert report["retrain_request_id"] is not None
    assert report["estimated_performance"]["calibration"].startswith("corrected by the champion's holdout")
    page = wiring.artifact_store().read_bytes(report["html"]).decode()
    assert f"Estimated drop against the champion's holdout macro-F1 {drop['reference_macro_f1']:.4g}" in page
    assert "significant and large;\n requests a retrain" in page


def test_switched_off_it_only_reports_what_it_would_have_done(champion):
    log_night(champion, BORDERLINE_ONLY)
    report, _ = check(enabled=False)
    assert report["decision"] != "drift" and report["retrain_request_id"] is None
    assert report["estimated_performance"]["drop"]["note"].startswith("would request a retrain")


def test_a_stationary_night_requests_nothing(champion):
    log_night(champion, None)
    report, _ = check(enabled=True)
    assert report["estimated_performance"]["drop"]["status"] == "ok"
    assert report["decision"] != "drift" and report["retrain_request_id"] is None


def test_training_stores_the_holdout_reference_in_the_winners_baseline(trained_candidate):
    from shared.training.runs import _winner_baseline

    winner, data = trained_candidate.winner, trained_candidate.data
    reference = _winner_baseline(winner, data, None, None, {})["estimation_reference"]
    # the served labels on the holdout: the same matrix as the winner's holdout metrics
    assert reference["rows"] == len(data.y_holdout)
    assert reference["realised"] == winner.metrics["confusion_matrix"]["matrix"]
    assert sum(map(sum, reference["expected"])) == pytest.approx(len(data.y_holdout), abs=1e-3)
