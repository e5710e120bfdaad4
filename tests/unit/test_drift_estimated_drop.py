"""CBPE corrected by the champion's holdout, and the retrain it can request
on its own: on synthetic windows whose true labels are drawn from known
probabilities (the model's logged ones sharpened, i.e. overconfident, where
the calibration is to be wrong), so the truth is known by construction."""

import numpy as np
import pytest

from shared.monitoring import estimated_drop
from shared.monitoring.baseline import compute_baseline
from shared.monitoring.estimated_performance import estimate_performance, expected_confusion, holdout_reference
from shared.monitoring.statistics import DriftThresholds, WindowAggregator, evaluate_window
from shared.records import WindowChunk
from shared.schema import LABELS
from shared.training.synthetic_data import generate_reference_data


def population(rows: int, seed: int, spread: float = 0.3, sharpen: float = 1.0):
    """(logged probabilities, true labels, predicted labels): the truth drawn
    from the true probabilities; the model logs them ** sharpen, renormalised.
    A larger `spread` is a population of less clear-cut patients."""
    rng = np.random.default_rng(seed)
    true = rng.dirichlet([spread] * 5, size=rows)
    truth = (true.cumsum(axis=1) > rng.random((rows, 1))).argmax(axis=1)
    logged = true ** sharpen
    logged /= logged.sum(axis=1, keepdims=True)
    return logged, truth, logged.argmax(axis=1)


def reference(rows: int, seed: int = 100, **kwargs) -> dict:
    logged, truth, predicted = population(rows, seed, **kwargs)
    return holdout_reference(logged, predicted, truth)


def realised(truth, predicted) -> np.ndarray:
    matrix = np.zeros((5, 5))
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def drop(window_rows: int, *, spread: float, holdout_rows: int = 20_000, design_effect: float = 1.0, seed: int = 3):
    logged, _, predicted = population(window_rows, seed, spread=spread)
    return estimated_drop.estimated_drop(expected_confusion(logged, predicted), reference(holdout_rows),
                                         rows=window_rows, alpha=0.002, f1_drop=0.05,
                                         design_effect=design_effect, min_rows=200)


def test_the_holdout_residuals_correct_an_overconfident_model_and_the_interval_covers():
    holdout = reference(20_000, sharpen=2.0)
    plain_inside = corrected_inside = 0
    plain_errors, corrected_errors = [], []
    for seed in range(20):
        logged, truth, predicted = population(2000, seed, sharpen=2.0)
        actual = realised(truth, predicted)
        plain = estimate_performance(expected_confusion(logged, predicted), actual, rows=2000)
        fixed = estimate_performance(expected_confusion(logged, predicted), actual, rows=2000, reference=holdout)
        plain_errors.append(plain["macro_f1"] - plain["realised_macro_f1"])
        corrected_errors.append(fixed["macro_f1"] - fixed["realised_macro_f1"])
        plain_inside += plain["macro_f1_interval"][0] <= plain["realised_macro_f1"] <= plain["macro_f1_interval"][1]
        corrected_inside += fixed["macro_f1_interval"][0] <= fixed["realised_macro_f1"] <= fixed["macro_f1_interval"][1]
    assert np.mean(plain_errors) > 0.08  # overconfident: the plain estimate is far too optimistic
    assert abs(np.mean(corrected_errors)) < 0.01
    assert plain_inside <= 2 and corrected_inside >= 18
    assert fixed["calibration"].startswith("corrected by the champion's holdout residuals (20000 rows)")
    assert plain["calibration"].startswith("uncorrected")


def test_the_interval_carries_the_holdouts_own_sampling_error():
    logged, _, predicted = population(2000, 1)
    widths = {}
    for rows in (200, 50_000):
        low, high = estimate_performance(expected_confusion(logged, predicted), rows=2000,
                                         reference=reference(rows))["macro_f1_interval"]
        widths[rows] = high - low
    assert widths[200] > 1.5 * widths[50_000]


def test_a_significant_and_large_estimated_drop_is_degraded_and_stationary_windows_are_not():
    degraded = drop(1000, spread=1.0, design_effect=5)
    assert degraded["status"] == "degraded" and degraded["drop"] >= 0.05 and degraded["drop_lower_bound"] > 0
    for seed in range(20):
        assert drop(1000, spread=0.3, design_effect=5, seed=10 + seed)["status"] == "ok"


def test_significance_and_size_are_both_needed():
    small_but_sure = drop(100_000, spread=0.36, holdout_rows=50_000)
    assert small_but_sure["drop_lower_bound"] > 0 and small_but_sure["drop"] < 0.05
    assert small_but_sure["status"] == "ok"
    large_but_unsure = drop(200, spread=0.45, design_effect=5)
    assert large_but_unsure["drop"] >= 0.05 and large_but_unsure["drop_lower_bound"] <= 0
    assert large_but_unsure["status"] == "ok"


def test_repeated_measurements_are_discounted_by_the_design_effect():
    assert drop(2000, spread=0.45, design_effect=1)["status"] == "degraded"
    assert drop(2000, spread=0.45, design_effect=5)["status"] == "ok"


def test_the_reference_and_the_correction_are_drawn_from_one_holdout_resample():
    """A holdout that happens to be lucky raises the reference and, through its
    residuals, the corrected estimate alike: drawn jointly, its noise cancels in
    the drop (drawn apart, 60 holdout rows would blind the rule)."""
    many, few = drop(3000, spread=0.45, holdout_rows=20_000), drop(3000, spread=0.45, holdout_rows=60)
    assert many["status"] == few["status"] == "degraded"
    assert few["drop_lower_bound"] == pytest.approx(many["drop_lower_bound"], abs=0.01)


@pytest.fixture(scope="module")
def baseline():
    X, _ = generate_reference_data(10_000, seed=1)
    predicted = np.asarray(LABELS, dtype=object)[population(10_000, 100)[2]]  # the synthetic model's label mix
    return dict(compute_baseline(X, predicted), estimation_reference=reference(20_000))


def window_evaluation(baseline, spread: float, enabled: bool, rows: int = 1000) -> dict:
    """A window whose inputs do not drift, only the model's confidence in them."""
    logged, _, predicted = population(rows, 5, spread=spread)
    X, _ = generate_reference_data(rows, seed=5)
    chunk = WindowChunk(X, list(np.asarray(LABELS, dtype=object)[predicted]), [], probabilities=logged)
    thresholds = DriftThresholds()
    evaluation = evaluate_window(WindowAggregator(baseline).consume([chunk]), None, thresholds)
    return estimated_drop.apply(evaluation, baseline, thresholds, enabled=enabled)


def test_the_estimated_drop_makes_a_window_drift_on_its_own_only_when_enabled(baseline):
    report = window_evaluation(baseline, spread=1.0, enabled=True)
    assert report["decision"] == "drift"
    assert len(report["decided_by"]) == 1 and report["decided_by"] == report["reasons"]
    assert report["reasons"][0].startswith("estimated performance: macro-F1 ")
    assert "against the champion's" in report["reasons"][0]
    assert report["estimated_performance"]["drop"]["requests_retrain"] is True
    off = window_evaluation(baseline, spread=1.0, enabled=False)
    assert off["decision"] == "ok" and off["decided_by"] == []
    assert off["estimated_performance"]["drop"]["status"] == "degraded"
    assert off["estimated_performance"]["drop"]["note"].startswith("would request a retrain")
    calm = window_evaluation(baseline, spread=0.3, enabled=True)
    assert calm["decision"] == "ok" and calm["estimated_performance"]["drop"]["status"] == "ok"


def test_no_decision_without_a_holdout_reference_or_enough_rows(baseline):
    plain = {key: value for key, value in baseline.items() if key != "estimation_reference"}
    report = window_evaluation(plain, spread=1.0, enabled=True)
    assert report["decision"] == "ok" and report["estimated_performance"]["drop"]["status"] == "insufficient_data"
    few = window_evaluation(baseline, spread=1.0, enabled=True, rows=150)
    assert few["estimated_performance"]["drop"]["status"] == "insufficient_data" and "drift" != few["decision"]
