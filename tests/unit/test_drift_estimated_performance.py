"""Performance estimated before labels (CBPE): against scikit-learn on
calibrated-by-construction windows, kept by the aggregator per model version,
and shown beside the realised value in the report's page."""

import numpy as np
import pytest

from shared.monitoring.baseline import compute_baseline
from shared.monitoring.estimated_performance import estimate_performance, expected_confusion
from shared.monitoring.report_html import render_report_html
from shared.monitoring.statistics import WindowAggregator, evaluate_window
from shared.records import WindowChunk
from shared.schema import LABELS
from shared.training.synthetic_data import generate_reference_data, label_by_rule


@pytest.fixture(scope="module")
def baseline():
    X, _ = generate_reference_data(10_000, seed=1)
    return compute_baseline(X, label_by_rule(X))


def calibrated_window(rows: int, seed: int):
    """Probabilities, and true labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet([0.3] * 5, size=rows)
    truth = np.array([rng.choice(5, p=p) for p in probabilities])
    predicted = probabilities.argmax(axis=1)
    predicted[rng.random(rows) < 0.1] = 1  # a decision rule that is not the argmax, as served
    return probabilities, truth, predicted


def test_cbpe_estimates_the_realised_macro_f1_of_calibrated_probabilities():
    from sklearn.metrics import f1_score, recall_score

    probabilities, truth, predicted = calibrated_window(5000, seed=1)
    realised = np.zeros((5, 5), dtype=int)
    np.add.at(realised, (truth, predicted), 1)
    estimate = estimate_performance(expected_confusion(probabilities, predicted), realised, rows=5000)
    actual = f1_score(truth, predicted, average="macro")
    assert estimate["realised_macro_f1"] == pytest.approx(actual, abs=1e-4)
    assert estimate["macro_f1"] == pytest.approx(actual, abs=0.02)
    assert estimate["macro_f1_interval"][1] - estimate["macro_f1_interval"][0] < 0.05
    # a 95 % interval: the realised value falls inside it in about 19 windows of 20
    inside = 0
    for seed in range(20):
        probabilities, truth, predicted = calibrated_window(2000, seed=10 + seed)
        low, high = estimate_performance(expected_confusion(probabilities, predicted), rows=2000)["macro_f1_interval"]
        inside += low <= f1_score(truth, predicted, average="macro") <= high
    assert inside >= 16
    probabilities, truth, predicted = calibrated_window(5000, seed=1)
    recalls = recall_score(truth, predicted, average=None)
    for index, label in enumerate(LABELS):
        assert estimate["per_class"][label]["recall"] == pytest.approx(recalls[index], abs=0.03)
        assert estimate["per_class"][label]["realised"] == pytest.approx(recalls[index], abs=1e-4)


def test_the_aggregator_keeps_the_expected_confusion_of_its_own_rows(baseline):
    probabilities, truth, predicted = calibrated_window(300, seed=2)
    X, _ = generate_reference_data(300, seed=2)
    labels = np.asarray(LABELS, dtype=object)
    versions = ["champion"] * 200 + ["previous"] * 100
    chunk = WindowChunk(X, list(labels[predicted]), [], versions, probabilities)
    aggregate = WindowAggregator(baseline, model_version="champion").consume([chunk])
    assert aggregate.probability_rows == 200
    assert aggregate.expected_confusion == pytest.approx(expected_confusion(probabilities[:200], predicted[:200]))
    merged = WindowAggregator(baseline, model_version="champion")
    merged.add_counts(aggregate.to_counts())
    assert merged.expected_confusion == pytest.approx(aggregate.expected_confusion)


def test_the_page_shows_the_estimate_beside_the_realised_value(baseline):
    probabilities, truth, predicted = calibrated_window(400, seed=3)
    X, _ = generate_reference_data(400, seed=3)
    labels = np.asarray(LABELS, dtype=object)
    chunk = WindowChunk(X, list(labels[predicted]), list(labels[truth]), probabilities=probabilities)
    report = {"report_id": "r", "created_at": "t", "source": "predictions", "window_start": "a", "window_end": "b",
              "champion_version": "v1", **evaluate_window(WindowAggregator(baseline).consume([chunk]), None)}
    page = render_report_html(report, {})
    estimated = report["estimated_performance"]
    assert "Estimated performance before labels (CBPE)" in page
    assert f"<td>macro-F1</td><td>{estimated['macro_f1']:.4g}</td>" in page
    assert f"<td>{estimated['realised_macro_f1']:.4g}</td>" in page
    assert "Left out: 0 exact repeats" in page
