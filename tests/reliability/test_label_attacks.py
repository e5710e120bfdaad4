"""Issue 26's attacks on the labels, end to end through the retrain path on
the local stores: each ends without a changed served model, and a real change
of labelling by several clinicians is still learned.

The day: 2,000 predictions of the reference population, 20 % labelled
truthfully by three clinicians. The attacker (one ID token) then relabels the
febrile predictions (temperature >= 38.6, heart rate < 125: ENFERMEDAD AGUDA
by the reference rule) as NO ENFERMO, overwriting clinicians' labels where
there are some; the retrain request follows.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from shared import wiring
from shared.errors import PreconditionFailed
from shared.governance import approvals, quarantine
from shared.governance.labellers import labels_behind_change
from shared.models import registry
from shared.models.loading import load_version
from shared.monitoring.drift_check import run_drift_check
from shared.records import PredictionRecord
from shared.training.retrain_handler import train_for_request
from shared.training.runs import ensure_champion
from shared.training.synthetic_data import generate_reference_data
from tools.population_shift import population

CLINICIANS = ["ana@clinic.example", "ben@clinic.example", "carla@clinic.example"]
ATTACKER = "labeller@attacker.example"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


class RecordingBus:
    """Keeps what the drift check publishes instead of starting a training."""

    def __init__(self):
        self.published = []

    def publish(self, topic, data, attributes=None):
        self.published.append((topic, data))
        return f"message-{len(self.published)}"


def febrile(X: np.ndarray) -> np.ndarray:
    return (X[:, 0] >= 38.6) & (X[:, 1] < 125)


@pytest.fixture
def loop(quick_training_env):
    store, metadata = wiring.artifact_store(), wiring.metadata_store()
    ensure_champion(store, metadata, rows=3000, seed=42)
    return store, metadata, wiring.prediction_store()


def log_day(predictions, X, day: int = 0) -> list[str]:
    """Predictions as the serving champion answered them."""
    store = wiring.artifact_store()
    champion = load_version(store, registry.read_champion(store)[0]["version"])
    created = NOW - timedelta(days=day, hours=1)
    records = [PredictionRecord(uuid.uuid4().hex, created + timedelta(milliseconds=i), *row, answer, {},
                                champion.version)
               for i, (row, answer) in enumerate(zip(X.tolist(), champion.predict_labels(X)))]
    predictions.save_predictions(records)
    return [r.prediction_id for r in records]


def label(predictions, ids, labels, callers, day: int = 0) -> None:
    at = NOW - timedelta(days=day, minutes=30)
    for i, (prediction_id, value) in enumerate(zip(ids, labels)):
        predictions.record_outcome(prediction_id, value, at + timedelta(milliseconds=i),
                                   caller=callers[i % len(callers)])


def retrain(store, metadata, key: str) -> dict:
    dependencies = wiring.training_job_dependencies()  # the job's own wiring: quarantine applied
    return train_for_request({"window_start": (NOW - timedelta(days=1)).isoformat(), "window_end": NOW.isoformat()},
                             key=key, trigger={"reason": "test"}, predictions=dependencies["predictions"],
                             artifacts=store, metadata=metadata, bus=dependencies["bus"],
                             settings=dependencies["settings"], now=NOW)


def served_febrile_answers(store) -> np.ndarray:
    X, _ = generate_reference_data(6000, seed=77)
    return load_version(store, registry.read_champion(store)[0]["version"]).predict_labels(X[febrile(X)][:200])


def honest_day(predictions, seed: int = 5):
    X, y = generate_reference_data(2000, seed=seed)
    ids = log_day(predictions, X)
    labelled = np.random.default_rng(seed + 1000).random(len(ids)) < 0.2  # not the data's own stream
    label(predictions, np.asarray(ids)[labelled], y[labelled], CLINICIANS)
    return X, y, ids


def held_and_unchanged(store, metadata, result: dict, champion: str, before: np.ndarray) -> dict:
    record = metadata.get("experiments", result["run_id"])
    assert not result["promoted"] and registry.read_champion(store)[0]["version"] == champion
    assert (served_febrile_answers(store) == before).mean() >= 0.9
    return record


def test_mass_relabel_by_one_caller_is_held_for_approval_and_listed_with_its_caller(loop):
    store, metadata, predictions = loop
    champion = registry.read_champion(store)[0]["version"]
    before = served_febrile_answers(store)
    X, _, ids = honest_day(predictions)
    target = np.asarray(ids)[febrile(X)]
    label(predictions, target, ["NO ENFERMO"] * len(target), [ATTACKER])
    # First line of defence: the paired gate refuses a challenger that loses the acute rows it relabelled.
    refused = held_and_unchanged(store, metadata, retrain(store, metadata, "retrain-attack-gate"), champion, before)
    assert any("ENFERMEDAD AGUDA" in reason for reason in refused["promotion"]["reasons"]), refused["promotion"]
    assert not refused["promotion"].get("held_for_approval") and approvals.list_pending(metadata) == []
    # Second line, as in the attack reported: a gate that lets the change through (no recall rule)
    # still cannot promote it: change control holds it for a person.
    os.environ["PROMOTION_MAX_RECALL_DROP"] = "1"
    record = held_and_unchanged(store, metadata, retrain(store, metadata, "retrain-attack"), champion, before)
    assert record["promotion"]["held_for_approval"], record["promotion"]
    [pending] = approvals.list_pending(metadata)
    assert pending["version"] == record["winner"]["version"] and pending["expected_version"] == champion
    assert any("ENFERMEDAD AGUDA" in reason for reason in pending["held_because"])
    drivers = labels_behind_change(predictions, load_version(store, champion),
                                   load_version(store, pending["version"]), NOW - timedelta(days=2), NOW)
    assert drivers[0]["caller"] == ATTACKER and drivers[0]["labels_behind_change"] > 50
    # the overwritten clinicians' labels are all still there, with who sent them
    overwritten = [r for r in map(predictions.get_prediction, target) if r.outcome_history]
    assert overwritten and all(r.outcome_history[-1]["caller"] in CLINICIANS for r in overwritten)
    # the drift report's labeller signal flags the attacker, and only it
    report = run_drift_check(start=NOW - timedelta(days=1), end=NOW, predictions=predictions, artifacts=store,
                             metadata=metadata, bus=RecordingBus(), settings=wiring.settings("drift_check"))
    agreement = report["labellers"]
    assert [c for c, v in agreement["callers"].items() if v["flagged"]] == [ATTACKER], agreement
    rejected = approvals.reject(pending["version"], by="dr.lead", reason="one caller relabelled fever",
                                metadata=metadata)
    assert rejected["status"] == "rejected" and approvals.list_pending(metadata) == []
    assert registry.read_champion(store)[0]["version"] == champion


def test_injected_poisoned_predictions_beside_honest_ones_change_no_served_model(loop):
    store, metadata, predictions = loop
    champion = registry.read_champion(store)[0]["version"]
    before = served_febrile_answers(store)
    honest_day(predictions)
    X, _ = generate_reference_data(20_000, seed=11)
    injected = X[febrile(X)][:300]
    ids = log_day(predictions, injected)
    label(predictions, ids, ["NO ENFERMO"] * len(ids), [ATTACKER])
    held_and_unchanged(store, metadata, retrain(store, metadata, "retrain-inject"), champion, before)


def test_overwriting_only_clinicians_labels_changes_no_served_model(loop):
    store, metadata, predictions = loop
    champion = registry.read_champion(store)[0]["version"]
    before = served_febrile_answers(store)
    X, y, ids = honest_day(predictions)
    labelled = [r.prediction_id for r in map(predictions.get_prediction, np.asarray(ids)[febrile(X)])
                if r.outcome_label is not None]
    label(predictions, labelled, ["NO ENFERMO"] * len(labelled), [ATTACKER])
    held_and_unchanged(store, metadata, retrain(store, metadata, "retrain-overwrite"), champion, before)


def test_a_quarantined_callers_labels_change_no_training_and_the_clinicians_labels_count_again(loop):
    store, metadata, predictions = loop
    X, y, ids = honest_day(predictions)
    honest = {r.prediction_id: r.outcome_label for r in map(predictions.get_prediction, ids) if r.outcome_label}
    target = np.asarray(ids)[febrile(X)]
    label(predictions, target, ["NO ENFERMO"] * len(target), [ATTACKER])
    quarantine.quarantine(metadata, ATTACKER, since=NOW - timedelta(days=1), by="dr.lead", reason="test")
    filtered = wiring.training_job_dependencies()["predictions"]
    chunks = list(filtered.iter_outcomes_recorded(NOW - timedelta(days=1), NOW))
    # exactly the clinicians' labels count: the attacker's own rows dropped, its overwrites undone
    assert Counter(o for chunk in chunks for o in chunk.outcomes) == Counter(honest.values())
    result = retrain(store, metadata, "retrain-quarantined")
    record = metadata.get("experiments", result["run_id"])
    assert record["data_sources"]["outcomes"]["rows"] == len(honest)
    # the raw store still has every label, for audit
    assert predictions.get_prediction(target[0]).outcome_caller == ATTACKER
    quarantine.lift(metadata, ATTACKER, by="dr.lead")
    lifted = wiring.training_job_dependencies()["predictions"]
    assert sum(len(chunk) for chunk in lifted.iter_outcomes_recorded(NOW - timedelta(days=1), NOW)) \
        == len(set(honest) | set(target))


@pytest.mark.parametrize("bounds", ["default", "tight"])
def test_a_real_change_by_several_clinicians_over_days_is_learned(loop, bounds, monkeypatch):
    """Within the default bounds it promotes by itself; with tight bounds, after an approval."""
    if bounds == "tight":
        monkeypatch.setenv("PROMOTION_MAX_ANSWER_CHANGE", "0.01")
    store, metadata, predictions = loop
    champion = registry.read_champion(store)[0]["version"]
    for day in (2, 1, 0):
        X, y = population(700, seed=30 + day, shifted=True)
        ids = log_day(predictions, X, day=day)
        label(predictions, ids, y, CLINICIANS, day=day)
    result = retrain(store, metadata, "retrain-shift")
    record = metadata.get("experiments", result["run_id"])
    assert record["promotion"]["promote"], record["promotion"]  # the gate passed it
    assert record["promotion"]["held_for_approval"] == (bounds == "tight")
    if bounds == "tight":  # beyond the bounds: a person decides, once
        assert registry.read_champion(store)[0]["version"] == champion
        decided = approvals.approve(record["winner"]["version"], by="dr.lead", store=store, metadata=metadata)
        assert decided["status"] == "approved" and decided["decided_by"] == "dr.lead"
        with pytest.raises(PreconditionFailed):
            approvals.approve(record["winner"]["version"], by="someone.else", store=store, metadata=metadata)
        history = registry.champion_history(metadata, limit=10)
        assert [entry["actor"] for entry in history].count("approval:dr.lead") == 1
        assert metadata.get("experiments", result["run_id"])["promotion"]["promoted"]
    now_serving = registry.read_champion(store)[0]["version"]
    assert now_serving != champion and now_serving == record["winner"]["version"]
    # mild signs with a heart rate of 110 to 124: acute under the clinicians' new rule
    X, y = generate_reference_data(20_000, seed=12)
    region = (y == "ENFERMEDAD LEVE") & (X[:, 1] >= 112) & (X[:, 1] < 122)
    assert (load_version(store, now_serving).predict_labels(X[region]) == "ENFERMEDAD AGUDA").mean() >= 0.6
