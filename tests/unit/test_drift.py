"""Drift statistics against hand-computed values, and the decision rules on
fresh and shifted samples at small and large sizes."""

import math
import tracemalloc

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from shared.monitoring.baseline import compute_baseline
from shared.monitoring.statistics import (
    DriftThresholds,
    WindowAggregator,
    evaluate_window,
    jensen_shannon_distance,
    population_stability_index,
    wasserstein_from_histograms,
)
from shared.records import WindowChunk
from shared.training.synthetic_data import generate_reference_data, label_by_rule


def test_psi_by_hand():
    reference, current = [50, 50], [25, 75]
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert population_stability_index(reference, current) == pytest.approx(expected)
    assert population_stability_index([10, 20, 30], [10, 20, 30]) == 0.0


def test_psi_uses_epsilon_for_empty_bins():
    value = population_stability_index([50, 50], [100, 0], epsilon=1e-4)
    expected = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert value == pytest.approx(expected)


def test_wasserstein_by_hand_and_against_scipy():
    # all mass moves one bin of width 2 to the right: W1 = 2
    assert wasserstein_from_histograms([1, 0, 0], [0, 1, 0], bin_width=2.0) == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 20_000), rng.normal(0.5, 1.2, 20_000)
    edges = np.linspace(-10, 10, 1001)
    histogram_a, _ = np.histogram(a, edges)
    histogram_b, _ = np.histogram(b, edges)
    assert wasserstein_from_histograms(histogram_a, histogram_b, 0.02) == pytest.approx(
        wasserstein_distance(a, b), abs=0.01)


def test_jensen_shannon_distance_matches_scipy():
    assert jensen_shannon_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert jensen_shannon_distance([3, 1], [3, 1]) == pytest.approx(0.0)
    rng = np.random.default_rng(3)
    for _ in range(200):
        p, q = rng.integers(0, 50, size=5), rng.integers(0, 50, size=5)
        p[rng.integers(0, 5)] = 0  # empty classes, as in a real window
        p[0], q[1] = p[0] + 1, q[1] + 1  # never an all-zero vector
        # counts, not proportions: scipy normalises them too
        assert jensen_shannon_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9), (p, q)


@pytest.fixture(scope="module")
def baseline():
    X, _ = generate_reference_data(40_000, seed=1)
    return compute_baseline(X, label_by_rule(X))


def chunks_of(X, size=5000):
    for start in range(0, len(X), size):
        part = X[start:start + size]
        yield WindowChunk(part, list(label_by_rule(part)), [None] * len(part))


@pytest.mark.parametrize("rows", [1_000, 100_000])
def test_a_fresh_sample_of_the_reference_is_not_drift(baseline, rows):
    X, _ = generate_reference_data(rows, seed=99)
    report = evaluate_window(WindowAggregator(baseline).consume(chunks_of(X)), None)
    assert report["sample_size"] == rows
    assert report["decision"] == "ok", report["reasons"]


def test_fever_and_tachycardia_are_drift(baseline):
    X, _ = generate_reference_data(5_000, seed=5, profile_weights={"acute": 0.6, "mild": 0.3})
    report = evaluate_window(WindowAggregator(baseline).consume(chunks_of(X)), None)
    assert report["decision"] == "drift"
    assert report["features"]["temperature"]["status"] == "drift"
    assert report["features"]["temperature"]["psi"] >= 0.25
    assert report["features"]["temperature"]["window_mean"] > report["features"]["temperature"]["reference_mean"]


def test_a_trivial_shift_on_a_large_sample_is_not_drift(baseline):
    X, _ = generate_reference_data(100_000, seed=8)
    X = X.copy()
    X[:, 0] += 0.02  # 0.02 °C: statistically detectable at this size, clinically nothing
    report = evaluate_window(WindowAggregator(baseline).consume(chunks_of(X)), None)
    assert report["features"]["temperature"]["status"] == "ok"


def test_below_the_minimum_sample_never_triggers(baseline):
    X, _ = generate_reference_data(150, seed=5, profile_weights={"acute": 0.9})
    report = evaluate_window(WindowAggregator(baseline).consume(chunks_of(X)), None, DriftThresholds(min_samples=200))
    assert report["decision"] == "insufficient_data"


def test_performance_drop_from_outcomes(baseline):
    X, _ = generate_reference_data(1_000, seed=4)
    truth = list(label_by_rule(X))
    wrong = ["NO ENFERMO"] * len(X)  # a model that always says "not ill"
    chunk = WindowChunk(X, wrong, truth)
    report = evaluate_window(WindowAggregator(baseline).consume([chunk]), {"macro_f1": 0.9})
    assert report["performance"]["status"] == "degraded"
    assert report["performance"]["per_class"]["ENFERMEDAD AGUDA"]["recall"] == 0.0
    assert report["decision"] == "drift"


def test_aggregation_reads_a_stream_in_flat_memory(baseline):
    def stream(count):
        rng = np.random.default_rng(0)
        for _ in range(count):
            part = rng.normal([36.8, 80, 120], [0.5, 10, 12], size=(5000, 3))
            yield WindowChunk(part, ["NO ENFERMO"] * 5000, [])

    peaks = []
    for count in (4, 80):
        tracemalloc.start()
        aggregate = WindowAggregator(baseline).consume(stream(count))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert aggregate.rows == count * 5000
    assert peaks[1] < peaks[0] * 1.5  # 20x the records, about the same peak


@pytest.fixture(scope="module")
def warm_window(baseline):
    """Only temperature moves (+0.4 °C); predicted labels keep the reference
    mix, so the label check stays quiet and each rule can be isolated."""
    X, _ = generate_reference_data(20_000, seed=12)
    shifted = X.copy()
    shifted[:, 0] += 0.4
    return WindowAggregator(baseline).consume([WindowChunk(shifted, list(label_by_rule(X)), [])])


def judge(window, **thresholds):
    return evaluate_window(window, None, DriftThresholds(label_js_drift=1.01, **thresholds))


def test_feature_drift_needs_both_psi_and_wasserstein(warm_window):
    measured = judge(warm_window)["features"]["temperature"]
    psi, wasserstein = measured["psi"], measured["wasserstein_normalised"]
    assert psi > 0.1 and wasserstein > 0.1
    both = judge(warm_window, psi_warning=psi / 4, psi_drift=psi / 2, wasserstein_drift=wasserstein / 2)
    psi_only = judge(warm_window, psi_warning=psi / 4, psi_drift=psi / 2, wasserstein_drift=wasserstein * 2)
    wasserstein_only = judge(warm_window, psi_warning=psi * 2, psi_drift=psi * 3, wasserstein_drift=wasserstein / 2)
    assert both["features"]["temperature"]["status"] == "drift" and both["decision"] == "drift"
    for report in (psi_only, wasserstein_only):  # one statistic alone is a warning, never a retrain
        assert report["features"]["temperature"]["status"] == "warning"
        assert report["decision"] == "warning"
    for report in (both, psi_only, wasserstein_only):
        assert report["features"]["heart_rate"]["status"] == report["features"]["blood_pressure"]["status"] == "ok"
        assert report["prediction_drift"]["status"] == "ok"


def test_psi_between_the_warning_and_drift_thresholds_is_a_warning(warm_window):
    psi = judge(warm_window)["features"]["temperature"]["psi"]
    report = judge(warm_window, psi_warning=psi * 0.9, psi_drift=psi * 1.1, wasserstein_drift=10.0)
    assert report["features"]["temperature"]["status"] == "warning" and report["decision"] == "warning"
    assert len(report["reasons"]) == 1 and report["reasons"][0].startswith("temperature: warning")
    quiet = judge(warm_window, psi_warning=psi * 1.1, psi_drift=psi * 2, wasserstein_drift=10.0)
    assert quiet["features"]["temperature"]["status"] == "ok"
    assert quiet["decision"] == "ok" and quiet["reasons"] == []
