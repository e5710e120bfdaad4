"""The paired bootstrap of the macro-F1 difference, against scikit-learn's
macro-F1 and against the paired structure it relies on."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from shared.schema import LABELS
from shared.training.paired_comparison import paired_macro_f1_difference


def noisy(y, rng, error):
    predictions = y.copy()
    wrong = rng.random(len(y)) < error
    predictions[wrong] = rng.choice(np.array(LABELS, dtype=object), size=wrong.sum())
    return predictions


def test_the_difference_is_scikit_learns_weighted_macro_f1_difference():
    rng = np.random.default_rng(3)
    y = rng.choice(np.array(LABELS, dtype=object), size=3000, p=[0.4, 0.3, 0.2, 0.09, 0.01])
    a, b, weights = noisy(y, rng, 0.2), noisy(y, rng, 0.25), rng.uniform(0.01, 1, size=len(y))

    def macro(predictions):
        labels = sorted(set(y) | set(predictions))
        return f1_score(y, predictions, labels=labels, average="macro", sample_weight=weights, zero_division=0)

    result = paired_macro_f1_difference(y, a, b, weights, resamples=200)
    assert result["difference"] == pytest.approx(macro(a) - macro(b), abs=1e-6)
    assert result["low"] < result["difference"] < result["high"]
    assert result["effective_rows"] < len(y)


def test_pairing_identical_models_leaves_no_uncertainty():
    rng = np.random.default_rng(4)
    y = rng.choice(np.array(LABELS, dtype=object), size=500)
    a = noisy(y, rng, 0.3)
    result = paired_macro_f1_difference(y, a, a.copy(), resamples=200)
    assert result["low"] == result["high"] == 0.0


def test_the_interval_covers_no_difference_about_as_often_as_it_says():
    """Two exchangeable models (same error rate, independent errors): the 95 %
    interval should exclude 0 in about 5 % of samples, not 0 % nor 30 %."""
    rng = np.random.default_rng(5)
    excluded = 0
    for trial in range(60):
        y = rng.choice(np.array(LABELS[:3], dtype=object), size=400)
        result = paired_macro_f1_difference(y, noisy(y, rng, 0.2), noisy(y, rng, 0.2), resamples=400, seed=trial)
        excluded += result["significantly_worse"] or result["significantly_better"]
    assert excluded <= 9  # binomial(60, 0.05): P(> 9) < 0.2 %
