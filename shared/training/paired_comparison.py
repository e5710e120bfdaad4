"""Is one model significantly worse than another on the same rows?

A paired bootstrap of the macro-F1 difference: each resample draws the same
rows for both models, so what they share (the rows' difficulty) cancels and
only their disagreements move the difference. Holdout macro-F1 varies by about
0.017 at 4k rows between samples, more than any fixed tolerance a gate could
use; pairing removes most of that, and the interval says how much is left.

Poisson(1) counts per row stand in for multinomial resampling (the usual
large-sample bootstrap; it streams in chunks). Row weights (recency) weigh
each drawn row as in the reported metrics, so the point estimate equals the
difference of the two models' weighted macro-F1 (`evaluation.evaluate`).
"""

from __future__ import annotations

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
_CHUNK = 250


def _class_columns(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, int]:
    """Per row, for each label the model is scored on: weighted hit, prediction, truth."""
    labels = sorted(set(y_true) | set(y_pred))
    columns = []
    for label in labels:
        truth, predicted = y_true == label, y_pred == label
        columns += [weights * (truth & predicted), weights * predicted, weights * truth]
    return np.column_stack(columns), len(labels)


def _macro_f1(totals: np.ndarray, classes: int) -> np.ndarray:
    hits, predicted, truth = totals[..., 0::3], totals[..., 1::3], totals[..., 2::3]
    denominator = predicted + truth
    f1 = np.divide(2 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)
    return f1.sum(axis=-1) / classes


def paired_macro_f1_difference(y_true, challenger_pred, champion_pred, weights=None,
                               resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                               seed: int = 0) -> dict:
    """Macro-F1 of the challenger minus the champion's, with a percentile interval.

    Returns `difference`, `low`, `high` (the two-sided `confidence` interval),
    `significantly_worse` (high < 0), `significantly_better` (low > 0), and the
    rows and effective rows (Kish, from the weights) the interval rests on.
    Deterministic for a given `seed`, so a decision can be reproduced.
    """
    y_true = np.asarray(y_true, dtype=object)
    weights = np.ones(len(y_true)) if weights is None else np.asarray(weights, dtype=float)
    challenger, classes_a = _class_columns(y_true, np.asarray(challenger_pred, dtype=object), weights)
    champion, classes_b = _class_columns(y_true, np.asarray(champion_pred, dtype=object), weights)
    difference = float(_macro_f1(challenger.sum(axis=0), classes_a) - _macro_f1(champion.sum(axis=0), classes_b))
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, resamples, _CHUNK):
        counts = rng.poisson(1.0, size=(min(_CHUNK, resamples - start), len(y_true))).astype(float)
        draws.append(_macro_f1(counts @ challenger, classes_a) - _macro_f1(counts @ champion, classes_b))
    draws = np.concatenate(draws)
    tail = (1 - confidence) / 2
    low, high = (float(v) for v in np.quantile(draws, [tail, 1 - tail]))
    return {"method": f"paired bootstrap ({resamples} Poisson resamples of the same rows)",
            "difference": round(difference, 6), "low": round(low, 6), "high": round(high, 6),
            "confidence": confidence, "significantly_worse": high < 0, "significantly_better": low > 0,
            "rows": int(len(y_true)), "effective_rows": round(float(weights.sum() ** 2 / (weights ** 2).sum()), 1)}
