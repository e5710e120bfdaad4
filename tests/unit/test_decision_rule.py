"""The decision rule: calibration, rare-class decision weights, the tie-break,
and the one model-loading module applying the manifest's rule."""

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score

from shared.models.loading import calibrate, decide, load_version
from shared.schema import LABELS
from shared.stores.artifacts.local import LocalArtifactStore
from shared.training.candidates import Candidate, select_winner
from shared.training.decision_rule import (
    expected_calibration_error,
    fit_vector_scaling,
    macro_f1_and_recall,
    tune_decision_weights,
)
from tests.conftest import register_model


def rare_class_problem(rows=4000, seed=0):
    """Three classes; the rare one (index 2, 2 %) gets too little probability."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=rows, p=[0.7, 0.28, 0.02])
    logits = rng.normal(0, 1, size=(rows, 3))
    logits[np.arange(rows), y] += 2.0
    logits[:, 2] -= 2.0  # the model under-calls the rare class
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities, y


def test_macro_f1_and_recall_match_scikit_learn():
    probabilities, y = rare_class_problem()
    decided = probabilities.argmax(axis=1)
    macro_f1, recall = macro_f1_and_recall(y, decided, 3, rare=2)
    assert macro_f1 == pytest.approx(f1_score(y, decided, average="macro"))
    assert recall == pytest.approx(recall_score(y, decided, labels=[2], average="macro"))


def test_tuned_weights_reach_the_rare_recall_and_keep_macro_f1_when_unconstrained():
    probabilities, y = rare_class_problem()
    _, argmax_recall = macro_f1_and_recall(y, probabilities.argmax(axis=1), 3, rare=2)
    assert argmax_recall < 0.9
    weights, tuning = tune_decision_weights(probabilities, y, rare=2, min_recall=0.9)
    assert tuning["feasible"]
    _, recall = macro_f1_and_recall(y, decide(probabilities, weights), 3, rare=2)
    assert recall >= 0.9 and tuning["out_of_fold_rare_recall"]["tuned"] == pytest.approx(recall, abs=1e-6)
    free, _ = tune_decision_weights(probabilities, y, rare=2, min_recall=0.0)
    free_f1, _ = macro_f1_and_recall(y, decide(probabilities, free), 3, rare=2)
    argmax_f1, _ = macro_f1_and_recall(y, probabilities.argmax(axis=1), 3, rare=2)
    assert free_f1 >= argmax_f1


def test_expected_calibration_error_by_hand():
    # two rows at confidence 0.9 (one right), two at 0.6 (both right)
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    assert expected_calibration_error(probabilities, y) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_vector_scaling_reduces_the_calibration_error_of_an_overconfident_model():
    rng = np.random.default_rng(1)
    y = rng.choice(3, size=6000, p=[0.6, 0.3, 0.1])
    logits = rng.normal(0, 1, size=(6000, 3))
    logits[np.arange(6000), y] += 1.0
    overconfident = np.exp(4 * logits) / np.exp(4 * logits).sum(axis=1, keepdims=True)
    calibration = fit_vector_scaling(overconfident[:3000], y[:3000])
    raw = expected_calibration_error(overconfident[3000:], y[3000:])
    fixed = expected_calibration_error(calibrate(overconfident[3000:], calibration), y[3000:])
    assert fixed < raw / 2


def test_the_loading_module_applies_the_manifests_rule(tmp_path, trained_candidate):
    """Every function decides through `load_version(...)`: the manifest's weights change the label."""
    store = LocalArtifactStore(tmp_path / "artifacts")
    manifest = register_model(store, trained_candidate, promote=False)
    plain = load_version(store, manifest["version"])
    rows = trained_candidate.data.X_holdout[:50]
    assert set(plain.predict_labels(rows)) != {"ENFERMEDAD TERMINAL"}
    weights = [1e-6] * len(plain.labels)
    weights[plain.labels.index("ENFERMEDAD TERMINAL")] = 1.0
    tampered = dict(plain.manifest, decision_weights=weights,
                    calibration={"slope": [1.0] * len(plain.labels), "intercept": [0.0] * len(plain.labels)})
    weighted = dataclasses.replace(plain, manifest=tampered)
    assert set(weighted.predict_labels(rows)) == {"ENFERMEDAD TERMINAL"}
    assert {label for label, _ in weighted.predict(rows.tolist())} == {"ENFERMEDAD TERMINAL"}


def test_registered_versions_carry_their_rule(tmp_path, trained_candidate):
    from shared.models import registry
    from shared.monitoring.baseline import compute_baseline

    store = LocalArtifactStore(tmp_path / "artifacts")
    winner, data = trained_candidate.winner, trained_candidate.data
    manifest = registry.register_version(
        store, winner.artifact_bytes, labels=data.labels, metrics=winner.metrics,
        baseline=compute_baseline(data.X_train, data.y_holdout), data_fingerprint=data.fingerprint,
        training_parameters={}, decision_rule=winner.decision_rule)
    assert manifest["decision_weights"] == winner.decision_rule["decision_weights"]
    assert manifest["calibration"]["method"] == "vector_scaling"
    model = load_version(store, manifest["version"])
    from shared.training.candidates import predict_labels
    expected = predict_labels(winner.pipeline, data.X_holdout, data.labels, winner.decision_rule)
    assert list(model.predict_labels(data.X_holdout)) == list(expected)


def test_ties_go_first_to_the_candidate_that_keeps_the_rarest_class():
    def candidate(name, f1, size, rare_recall):
        made = Candidate(name, {}, None, [f1], [])
        made.metrics = {"macro_f1": f1, "per_class": {label: {"recall": 1.0, "support": 10} for label in LABELS}}
        made.metrics["per_class"]["ENFERMEDAD TERMINAL"]["recall"] = rare_recall
        made.artifact_bytes = b"x" * size
        return made

    small_misses = candidate("small", 0.950, 10, 0.5)
    big_keeps = candidate("big", 0.948, 1000, 0.95)
    assert select_winner([small_misses, big_keeps], 0.005, "ENFERMEDAD TERMINAL", 0.9).family == "big"
    assert select_winner([small_misses, big_keeps], 0.001, "ENFERMEDAD TERMINAL", 0.9).family == "small"
