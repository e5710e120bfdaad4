"""The training protocol on small data: every family, stratification, the rare
class, determinism, metrics and serialisation."""

from collections import Counter

import numpy as np
import pytest

from shared.errors import TrainingDataError
from shared.schema import LABELS
from shared.training.candidates import (
    FAMILIES,
    SEARCH_SPACES,
    Candidate,
    cross_validate,
    encode,
    evaluate,
    prepare_data,
    select_winner,
    serialize,
    train_candidates,
)
from shared.training.synthetic_data import generate_reference_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data():
    return generate_reference_data(2500, seed=11)


@pytest.fixture(scope="module")
def result(data):
    X, y = data
    return train_candidates(X, y, seed=11, budget_seconds=0.0)


def test_each_family_trains_and_predicts_the_five_labels(result):
    assert [c.family for c in result.candidates] == list(FAMILIES)
    for candidate in result.candidates:
        assert candidate.metrics["macro_f1"] > 0.6, candidate.family
        predicted = candidate.pipeline.predict_proba(result.data.X_holdout)
        assert predicted.shape == (len(result.data.X_holdout), 5)
        assert list(candidate.pipeline.named_steps) == ["scale", "classifier"]
    assert result.data.labels == list(LABELS)


def test_split_is_about_80_20_with_every_class_held_out(result, data):
    _, y = data
    prepared = result.data
    assert len(prepared.y_holdout) == pytest.approx(0.2 * len(y), rel=0.1)
    overall, holdout = Counter(y), Counter(prepared.y_holdout)
    for label in LABELS:
        assert holdout[label] >= 1
        assert holdout[label] / len(prepared.y_holdout) == pytest.approx(overall[label] / len(y), abs=0.03)


def test_a_row_is_on_the_same_side_in_overlapping_runs(data):
    """Two retrains over a sliding window: a row the first trained on is never
    in the second's holdout (else the champion is scored on its training rows)."""
    X, y = data
    first = prepare_data(X[:2000], y[:2000], seed=1)
    second = prepare_data(X[500:], y[500:], seed=2)
    trained_on = {(tuple(row), label) for row, label in zip(first.X_train.tolist(), first.y_train)}
    held_out = {(tuple(row), label) for row, label in zip(second.X_holdout.tolist(), second.y_holdout)}
    assert len(second.y_holdout) > 300 and not trained_on & held_out


def test_metrics_are_recorded_in_fixed_label_order(result):
    metrics = result.winner.metrics
    assert metrics["confusion_matrix"]["labels"] == list(LABELS)
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert matrix.sum() == len(result.data.y_holdout)
    for index, label in enumerate(LABELS):
        assert matrix[index].sum() == metrics["per_class"][label]["support"]
    summary = result.winner.summary()
    assert summary["artifact_size_bytes"] > 0 and summary["single_row_latency_ms"] > 0
    assert len(summary["cv_scores"]) == result.data.folds and summary["cv_macro_f1_std"] >= 0


def test_serving_cost_is_timed_on_what_serves_each_family(result):
    """The ONNX graph where the family exports (as `predict` serves it), the
    pipeline only where it has none -- and then the reason is recorded."""
    costs = {c.family: c.summary() for c in result.candidates}
    for family in ("xgboost", "random_forest", "mlp", "hist_gradient_boosting"):
        assert costs[family]["single_row_latency_timed_on"] == "onnx", costs[family]["serving_cost"]
    assert all(summary["single_row_latency_ms"] > 0 for summary in costs.values())


def test_a_pipeline_without_an_exact_export_is_timed_on_the_pipeline_with_the_reason(result):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from shared.training.serving_cost import served_latency_ms

    forest = next(c for c in result.candidates if c.family == "random_forest").pipeline
    scaled_trees = make_pipeline(StandardScaler().fit(result.data.X_train), forest.steps[-1][1])
    latency, cost, graph = served_latency_ms(scaled_trees, result.data.labels, {}, result.data.X_train[:1])
    assert cost["timed_on"] == "pipeline" and "PortableUnsupported" in cost["reason"] and latency > 0 and graph is None


def test_same_data_and_seed_give_the_same_selection_and_metrics(data, result):
    X, y = data
    again = train_candidates(X, y, seed=11, budget_seconds=0.0)
    assert again.winner.family == result.winner.family
    assert [c.metrics for c in again.candidates] == [c.metrics for c in result.candidates]
    assert [c.cv_scores for c in again.candidates] == [c.cv_scores for c in result.candidates]


def scored_folds(monkeypatch, data, seed):
    """Run the project's `cross_validate` and record the true labels of each
    fold it scores (sklearn's f1_score wrapped, never replaced)."""
    import sklearn.metrics

    folds, real_f1 = [], sklearn.metrics.f1_score

    def recording_f1(y_true, y_pred, **kwargs):
        folds.append(np.asarray(y_true))
        return real_f1(y_true, y_pred, **kwargs)

    monkeypatch.setattr(sklearn.metrics, "f1_score", recording_f1)
    scores, _ = cross_validate("xgboost", SEARCH_SPACES["xgboost"][0], data, seed)
    monkeypatch.undo()
    return scores, folds


def test_cross_validation_folds_are_stratified_with_every_class_in_every_fold(data, monkeypatch):
    X, y = data
    prepared = prepare_data(X, y, seed=1)
    scores, folds = scored_folds(monkeypatch, prepared, seed=1)
    assert len(scores) == len(folds) == prepared.folds == 5
    assert sum(len(fold) for fold in folds) == len(prepared.y_train)  # every training row scored once
    overall = Counter(encode(prepared.y_train, prepared.labels))
    for fold in folds:
        counts = Counter(fold)
        assert set(counts) == set(range(len(LABELS)))
        for label, total in overall.items():  # each class split evenly across the folds
            assert abs(counts[label] - total / prepared.folds) <= 1, (label, counts[label], total)
    again, same_folds = scored_folds(monkeypatch, prepared, seed=1)
    assert again == scores and all(np.array_equal(a, b) for a, b in zip(folds, same_folds))


def test_a_rare_class_with_three_examples_trains_and_the_record_says_so():
    X, y = generate_reference_data(1500, seed=5)
    rare = np.flatnonzero(y == "ENFERMEDAD TERMINAL")
    keep = np.ones(len(y), dtype=bool)
    keep[rare[3:]] = False
    X, y = X[keep], y[keep]
    assert Counter(y)["ENFERMEDAD TERMINAL"] == 3
    outcome = train_candidates(X, y, seed=5, budget_seconds=0.0)
    assert outcome.data.folds < 5
    assert any("folds" in note for note in outcome.data.notes)
    assert "ENFERMEDAD TERMINAL" in outcome.data.labels


def test_a_class_with_one_example_is_dropped_with_a_note():
    X, y = generate_reference_data(800, seed=6)
    rare = np.flatnonzero(y == "ENFERMEDAD TERMINAL")
    keep = np.ones(len(y), dtype=bool)
    keep[rare[1:]] = False
    prepared = prepare_data(X[keep], y[keep], seed=6)
    assert "ENFERMEDAD TERMINAL" not in prepared.labels
    assert any("dropped" in note for note in prepared.notes)


@pytest.mark.parametrize("X, y, message", [
    (np.empty((0, 3)), np.array([], dtype=object), "empty"),
    (np.ones((10, 3)), np.array(["NO ENFERMO"] * 10, dtype=object), "two classes"),
    (np.ones((10, 3)), np.array(["SICK"] * 10, dtype=object), "unknown labels"),
    (np.full((4, 3), np.nan), np.array(["NO ENFERMO", "ENFERMEDAD LEVE"] * 2, dtype=object), "non-finite"),
])
def test_unusable_data_is_a_clear_error(X, y, message):
    with pytest.raises(TrainingDataError, match=message):
        prepare_data(X, y, seed=1)


def test_unknown_family_is_refused(data):
    with pytest.raises(TrainingDataError, match="unknown model families"):
        train_candidates(*data, families=("svm",))


def test_ties_go_to_the_smaller_artifact():
    def candidate(name, f1, size):
        made = Candidate(name, {}, None, [f1], [])
        made.metrics = {"macro_f1": f1}
        made.artifact_bytes = b"x" * size
        return made

    big, small, worse = candidate("big", 0.950, 1000), candidate("small", 0.947, 10), candidate("worse", 0.90, 1)
    assert select_winner([big, small, worse], tie_tolerance=0.005).family == "small"
    assert select_winner([big, small, worse], tie_tolerance=0.001).family == "big"


def test_evaluate_by_hand():
    metrics = evaluate(["NO ENFERMO", "NO ENFERMO", "ENFERMEDAD LEVE", "ENFERMEDAD LEVE"],
                       ["NO ENFERMO", "ENFERMEDAD LEVE", "ENFERMEDAD LEVE", "ENFERMEDAD LEVE"])
    assert metrics["per_class"]["NO ENFERMO"]["recall"] == 0.5
    assert metrics["per_class"]["ENFERMEDAD LEVE"]["precision"] == pytest.approx(2 / 3, abs=1e-6)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-6)
    assert metrics["confusion_matrix"]["matrix"][0][:2] == [1, 1]


def test_serialized_pipeline_round_trips(result):
    import io

    import joblib

    loaded = joblib.load(io.BytesIO(serialize(result.winner.pipeline)))
    assert np.allclose(loaded.predict_proba(result.data.X_holdout[:5]),
                       result.winner.pipeline.predict_proba(result.data.X_holdout[:5]))


def test_uniformly_small_weights_train_the_same_model_as_none(data):
    """Rows that are all old weigh little; only their relative weights may matter
    (XGBoost's min_child_weight once forbade every split)."""
    X, y = data
    plain = train_candidates(X, y, seed=3, families=("xgboost",), budget_seconds=0.0)
    old = train_candidates(X, y, seed=3, families=("xgboost",), budget_seconds=0.0,
                           sample_weight=np.full(len(y), 0.5 ** 14))
    assert old.winner.metrics["macro_f1"] == pytest.approx(plain.winner.metrics["macro_f1"], abs=1e-6)
    assert old.winner.metrics["macro_f1"] > 0.8


@pytest.mark.parametrize("family", FAMILIES)
def test_a_class_present_only_as_old_fill_rows_is_learned_by_every_family(family):
    """Issue 21: a week of production without TERMINAL, its rows only from the
    reference fill weighing 0.5 ** 14; balanced weighted class totals let
    every family learn it (HistGradientBoosting recalled none of it before)."""
    from shared.training.candidates import build_pipeline, fit_pipeline

    X, y = generate_reference_data(3000, seed=5)
    weights = np.where(y == "ENFERMEDAD TERMINAL", 0.5 ** 14, 0.5 ** (np.arange(len(y)) % 7 / 2))
    labels = [label for label in LABELS if label in set(y)]
    pipeline = fit_pipeline(build_pipeline(family, SEARCH_SPACES[family][0], seed=0, n_jobs=1), family,
                            X, encode(y, labels), weights)
    X_fresh, y_fresh = generate_reference_data(3000, seed=6)
    called = np.asarray(labels, dtype=object)[pipeline.predict(X_fresh)]
    terminal = y_fresh == "ENFERMEDAD TERMINAL"
    assert np.mean(called[terminal] == "ENFERMEDAD TERMINAL") >= 0.9


def test_a_promise_kept_only_beyond_the_cap_is_served_and_scored_with_its_rule():
    """Seed 10 of bench/rare_class.py (the soft-edged rare class): the forest
    keeps the rare-class promise only at ~0.050 of out-of-fold macro-F1, just
    beyond the 0.05 cap. The search widens the cap for it (`widen_the_cap`) and
    scores its holdout again under that rule. (20k rows: ~6 s, slow for unit/.)"""
    from bench.rare_class import make_data
    from shared.training.candidates import predict_labels

    X, y = make_data(20_000, seed=10)
    result = train_candidates(X, y, seed=10, families=("random_forest",), budget_seconds=0.0, folds=3)
    winner = result.winner
    promise = winner.decision_rule["rare_class_promise"]
    assert promise["met"], promise  # broken wiring: "the weights that keep it cost more than 0.05"
    assert promise.get("widened_from") == 0.05  # else the widening below is not exercised
    assert list(winner.holdout_predictions) == list(
        predict_labels(winner.pipeline, result.data.X_holdout, result.data.labels, winner.decision_rule))
    rare = "ENFERMEDAD TERMINAL"
    recalled = sum(1 for t, p in zip(result.data.y_holdout, winner.holdout_predictions) if t == p == rare)
    assert winner.metrics["per_class"][rare]["recalled_rows"] == recalled


def test_a_class_held_out_only_by_its_forced_row_is_named_in_the_experiment_notes(data):
    """No TERMINAL row is held out by its content: its lowest-hash row is held
    out instead, a row a champion trained on another window may have trained
    on -- the record says so (and says nothing when content holds rows out)."""
    from shared.training.holdout import in_holdout, split_by_content

    X, y = data
    rare = "ENFERMEDAD TERMINAL"
    keep = ~((y == rare) & in_holdout(X, y))
    held, forced = split_by_content(X[keep], y[keep])
    assert forced == [rare] and held[y[keep] == rare].sum() == 1
    assert list(held) == list(in_holdout(X[keep], y[keep]))
    notes = prepare_data(X[keep], y[keep], seed=0).notes
    assert any(rare in note and "lowest-hash row" in note for note in notes)
    assert not any("lowest-hash row" in note for note in prepare_data(X, y, seed=0).notes)


def test_rows_seen_since_a_change_must_be_one_flag_per_row():
    """Review 20.10: like the weights, else a misaligned mask judges the wrong rows (or fails as an IndexError)."""
    X, y = generate_reference_data(600, seed=2)
    with pytest.raises(TrainingDataError, match="since a change"):
        prepare_data(X, y, seed=1, since_change=np.ones(len(y) - 1, dtype=bool))
    assert prepare_data(X, y, seed=1, since_change=np.ones(len(y), dtype=bool)).since_change_holdout.all()
